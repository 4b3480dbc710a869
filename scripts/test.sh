#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run it.
# Browser tests need Debian's chromium; they fail (never skip) when it is missing. The JS
# bundle check needs npm (on this kind of machine; installed from Debian if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
# lint is part of the suite: ruff's rules and format (pinned in the test extras)
.venv/bin/ruff check --no-cache .
.venv/bin/ruff format --no-cache --check .
set +e
.venv/bin/python -m pytest -q "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
