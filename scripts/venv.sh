# Sourced by the scripts: make .venv and install a requirements file into it, once per file content.
# The stamp makes a second run skip pip; pip's own cache makes a rebuild of .venv cheap.
set -euo pipefail

PYTHON=${PYTHON:-python3}

ensure_venv() {
    local requirements=$1
    if [ ! -x .venv/bin/python ]; then
        "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
            || { echo "Python 3.11 or newer is needed (set PYTHON=...)" >&2; exit 1; }
        "$PYTHON" -m venv .venv
    fi
    local digest stamp
    digest=$(cat "$requirements" $(sed -n 's/^-r //p' "$requirements") | sha256sum | cut -c1-16)
    stamp=".venv/.installed-$(basename "$requirements" .txt)-$digest"
    if [ ! -f "$stamp" ]; then
        echo "Installing $requirements into .venv ..."
        .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
        touch "$stamp"
    fi
}
