#!/usr/bin/env bash
# Set up everything and run MHP Studio on the embedded default: SQLite, Celery tasks in-process.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv requirements-web.txt

export DEBUG=${DEBUG:-1}
export MEDIA_ROOT=${MEDIA_ROOT:-$PWD/media}
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py load_demo
echo "MHP Studio: http://127.0.0.1:8000/  (admin: http://127.0.0.1:8000/admin/)"
exec .venv/bin/python manage.py runserver "${MHP_ADDRESS:-127.0.0.1:8000}"
