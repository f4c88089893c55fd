#!/usr/bin/env bash
# Set up Loupe on its embedded defaults (SQLite, ./data) and serve it with demo studies
# on http://127.0.0.1:8000/ (pass --port N to change). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_venv requirements.txt
exec .venv/bin/python manage.py demo "$@"
