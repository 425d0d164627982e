#!/usr/bin/env bash
# Runs the browser suite: `npm ci` when node_modules is missing or older than
# package-lock.json, then `node --test`. Fails (never skips) when node, npm or
# Chromium is missing: `make test` installs them (scripts/install-deps.sh).
# Usage: MPIM_BIN=<built mpim> [MPIM_BROWSER_ARTIFACTS=<dir>] tests/browser/run.sh [node --test args]
set -euo pipefail
cd "$(dirname "$0")"

fail() { echo "browser tests: $*" >&2; exit 1; }
command -v node >/dev/null || fail "node is missing (apt-get install nodejs npm)"
[[ -x "${CHROMIUM:-/usr/bin/chromium}" ]] || fail "${CHROMIUM:-/usr/bin/chromium} is missing (apt-get install chromium)"
[[ -n "${MPIM_BIN:-}" && -x "$MPIM_BIN" ]] || fail "MPIM_BIN must name the built mpim binary"

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  command -v npm >/dev/null || fail "npm is missing (apt-get install npm)"
  npm ci --no-audit --no-fund --loglevel=error
fi

exec node --test --test-concurrency=1 "$@" chat.test.js group.test.js
