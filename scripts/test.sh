#!/usr/bin/env bash
# Install what the tests need (Debian's chromium, PostgreSQL, Orthanc, dcmtk, fonts;
# Python packages in .venv), then lint, type-check and run the whole suite.
# PostgreSQL, Orthanc and the test OpenID provider (node, tests/idp) are started by the
# test fixtures on private loopback ports.
# Screenshots and other artifacts land in ./test-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
apt_install chromium postgresql orthanc orthanc-dicomweb dcmtk fonts-wqy-zenhei ca-certificates redis-server nginx curl
command -v npm >/dev/null || apt_install nodejs npm
ensure_venv requirements-dev.txt
echo "== npm ci (tests/idp: the OpenID provider the SSO and SMART tests run against)"
(cd tests/idp && npm ci --no-audit --no-fund --loglevel=error)
export LOUPE_TEST_ARTIFACTS="${LOUPE_TEST_ARTIFACTS:-$PWD/test-artifacts}"
mkdir -p "$LOUPE_TEST_ARTIFACTS"

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
LOUPE_DEBUG=1 LOUPE_DATA_DIR="$(mktemp -d)" .venv/bin/mypy .
echo "== audit (pip-audit, npm audit; scripts/audit-allowlist.txt)"
bash scripts/audit.sh
echo "== pytest"
.venv/bin/python -m pytest "$@"
