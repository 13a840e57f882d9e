#!/usr/bin/env bash
# Set up everything (web, ML and test tools) and run all the tests with ruff first.
# Tests need PostgreSQL and Redis: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/mhp_studio)
# and MHP_TEST_REDIS_URL (default redis://127.0.0.1:6379/15). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv requirements.txt

.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
