#!/usr/bin/env bash
# Set up everything and run MHP Studio on the embedded default: SQLite, Celery tasks in-process.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv requirements-web.txt

export DEBUG=${DEBUG:-1}
export MEDIA_ROOT=${MEDIA_ROOT:-$PWD/media}
# The same key at every start (kept next to the database, mode 600), so sessions survive a restart.
SECRET_KEY=${SECRET_KEY:-$(.venv/bin/python scripts/demo_secret.py)}
export SECRET_KEY
# runserver takes PORT or ADDRESS:PORT; print the address it will really serve.
ADDRESS=${MHP_ADDRESS:-127.0.0.1:8000}
[[ $ADDRESS == *:* ]] || ADDRESS="127.0.0.1:$ADDRESS"
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py load_demo
echo "MHP Studio: http://${ADDRESS}/  (admin: http://${ADDRESS}/admin/)"
exec .venv/bin/python manage.py runserver "$ADDRESS"
