#!/usr/bin/env bash
# Known vulnerabilities in what Loupe ships and tests with (issue 17):
#   * pip-audit -r requirements.txt (PyPI's vulnerability data, --vulnerability-service pypi);
#   * npm audit --omit=dev in every folder of the repository with a package.json and its
#     package-lock.json (tests/idp, the test OpenID provider).
# An advisory may be accepted only in scripts/audit-allowlist.txt, one a line:
#   <advisory ID (PYSEC-…, GHSA-…, CVE-…)> <why it does not apply or what answers it>
# A line without its reason fails the run.
#
# Exit status: 1 when an advisory is found that the allow-list does not explain; 0 when
# none is. When a vulnerability service cannot be reached (a machine without the internet),
# the run says so plainly and exits 0, unless CI_AUDIT_REQUIRED=1: then it exits 1 too,
# because nothing was checked.
set -uo pipefail
cd "$(dirname "$0")/.."

ALLOWLIST=scripts/audit-allowlist.txt
PYTHON=.venv/bin/python
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
unexplained=0
unchecked=0

[ -x "$PYTHON" ] || PYTHON=python3

# The allow-list: IDs only, each with its reason.
if [ -f "$ALLOWLIST" ]; then
  if ! "$PYTHON" - "$ALLOWLIST" >"$WORK/ids" <<'PY'; then
import sys
bad = []
for number, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    text = line.strip()
    if not text or text.startswith("#"):
        continue
    advisory, *reason = text.split(None, 1)
    if not reason or not reason[0].strip():
        bad.append(f"{sys.argv[1]}:{number}: {advisory} has no reason")
    print(advisory)
for line in bad:
    print(line, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
    echo "audit: every allow-listed advisory needs a one-line reason" >&2
    exit 1
  fi
else
  : >"$WORK/ids"
fi

# -- Python ------------------------------------------------------------------------------
echo "== pip-audit -r requirements.txt"
if [ ! -x .venv/bin/pip-audit ]; then
  echo "audit: pip-audit is not installed (.venv/bin/pip install -r requirements-dev.txt)" >&2
  exit 1
fi
ignore=()
while read -r advisory; do ignore+=(--ignore-vuln "$advisory"); done <"$WORK/ids"
.venv/bin/pip-audit -r requirements.txt --vulnerability-service pypi --progress-spinner off \
  --format json --output "$WORK/pip.json" "${ignore[@]}" >"$WORK/pip.out" 2>"$WORK/pip.err"
pip_status=$?
"$PYTHON" - "$WORK/pip.json" "$pip_status" "$WORK/pip.err" "$WORK/ids" <<'PY'
import json
import sys

report_path, status, err_path, ids_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
allowed = set(open(ids_path).read().split())
errors = open(err_path, encoding="utf-8", errors="replace").read()
try:
    report = json.load(open(report_path))
except (OSError, ValueError):
    report = None
if report is None:
    unreachable = any(
        word in errors
        for word in ("Connection", "connection", "timed out", "Max retries", "ServiceError", "resolve")
    )
    tail = "\n".join(errors.strip().splitlines()[-5:])
    if unreachable:
        print(f"pip-audit: NOT CHECKED: the vulnerability service could not be reached:\n{tail}")
        sys.exit(2)
    print(f"pip-audit failed (exit {status}):\n{tail}")
    sys.exit(1)
dependencies = report.get("dependencies", [])
audited = [d for d in dependencies if "skip_reason" not in d]
skipped = [d for d in dependencies if "skip_reason" in d]
found = []
for dependency in audited:
    for vuln in dependency.get("vulns", []):
        names = {vuln.get("id", ""), *vuln.get("aliases", [])}
        state = "allowed" if names & allowed else "UNEXPLAINED"
        found.append((state, dependency["name"], dependency["version"], vuln.get("id"), vuln.get("fix_versions")))
for state, name, version, advisory, fixes in found:
    print(f"  {state}: {name} {version}: {advisory} (fixed in {', '.join(fixes or []) or 'no release'})")
print(f"pip-audit: {len(audited)} packages audited, {len(skipped)} not found by the service, "
      f"{sum(1 for f in found if f[0] == 'UNEXPLAINED')} unexplained advisories")
if dependencies and not audited:
    reasons = sorted({d['skip_reason'] for d in skipped})[:3]
    print("pip-audit: NOT CHECKED: the vulnerability service answered for no package: every "
          "lookup of PyPI's per-release JSON (/pypi/<name>/<version>/json) came back not found, "
          f"as from an index that serves no vulnerability data: {'; '.join(reasons)}")
    sys.exit(2)
sys.exit(1 if any(f[0] == "UNEXPLAINED" for f in found) else 0)
PY
case $? in
  0) ;;
  2) unchecked=1 ;;
  *) unexplained=1 ;;
esac

# -- JavaScript (the test tools) ---------------------------------------------------------
while IFS= read -r manifest; do
  folder="$(dirname "$manifest")"
  echo "== npm audit --omit=dev ($folder)"
  if ! command -v npm >/dev/null; then
    echo "npm audit: NOT CHECKED: npm is not installed (apt-get install npm)"
    unchecked=1
    continue
  fi
  if [ ! -f "$folder/package-lock.json" ]; then
    echo "npm audit: $folder has no package-lock.json: nothing pinned to audit" >&2
    unexplained=1
    continue
  fi
  (cd "$folder" && npm audit --omit=dev --json) >"$WORK/npm.json" 2>"$WORK/npm.err"
  npm_status=$?
  "$PYTHON" - "$WORK/npm.json" "$npm_status" "$WORK/npm.err" "$WORK/ids" <<'PY'
import json
import sys

report_path, status, err_path, ids_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
allowed = set(open(ids_path).read().split())
try:
    report = json.load(open(report_path))
except (OSError, ValueError):
    report = {}
error = report.get("error") if isinstance(report, dict) else None
if error or not isinstance(report.get("vulnerabilities"), dict):
    stderr = open(err_path, errors="replace").read().strip().splitlines()
    said = [line for line in stderr if "audit" in line.lower()] or stderr
    text = (error or {}).get("summary") if isinstance(error, dict) else None
    text = text or " / ".join(said[-3:]) or f"npm exited {status}"
    print(f"npm audit: NOT CHECKED: the registry's audit service did not answer: {text[:400]}")
    sys.exit(2)
found = []
for name, entry in report["vulnerabilities"].items():
    for via in entry.get("via", []):
        if not isinstance(via, dict):
            continue  # a package vulnerable through another one, listed on its own
        url = str(via.get("url", ""))
        advisory = url.rsplit("/", 1)[-1] if url else str(via.get("source"))
        state = "allowed" if advisory in allowed else "UNEXPLAINED"
        found.append((state, name, entry.get("range", ""), advisory, via.get("title", "")))
for state, name, versions, advisory, title in found:
    print(f"  {state}: {name} {versions}: {advisory} {title}")
total = report.get("metadata", {}).get("dependencies", {}).get("total", "?")
print(f"npm audit: {total} packages audited, "
      f"{sum(1 for f in found if f[0] == 'UNEXPLAINED')} unexplained advisories")
sys.exit(1 if any(f[0] == "UNEXPLAINED" for f in found) else 0)
PY
  case $? in
    0) ;;
    2) unchecked=1 ;;
    *) unexplained=1 ;;
  esac
done < <(find . -name package.json -not -path "*/node_modules/*" -not -path "./.venv/*" | sort)

if [ "$unexplained" -ne 0 ]; then
  echo "audit: FAILED: advisories that scripts/audit-allowlist.txt does not explain (above)"
  exit 1
fi
if [ "$unchecked" -ne 0 ]; then
  if [ "${CI_AUDIT_REQUIRED:-0}" = "1" ]; then
    echo "audit: FAILED: a vulnerability service could not be reached and CI_AUDIT_REQUIRED=1"
    exit 1
  fi
  echo "audit: INCOMPLETE: a vulnerability service could not be reached (see above); nothing unexplained among what was checked"
  exit 0
fi
echo "audit: clean: no advisory left unexplained"
