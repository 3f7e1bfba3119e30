#!/usr/bin/env bash
# What the browser test needs: the pinned npm packages of this folder (GraphiQL's assets and
# playwright-core) and Debian's Chromium (never a downloaded browser). Idempotent; `make test`
# runs it. Without root or apt-get it says what is missing and the test is skipped outside CI.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if command -v npm >/dev/null; then
  stamp="$here/node_modules/.installed"
  if [ ! -f "$stamp" ] || [ "$here/package-lock.json" -nt "$stamp" ]; then
    (cd "$here" && npm ci --no-audit --no-fund --silent) && touch "$stamp"
  fi
else
  echo "browser test: npm is not installed" >&2
fi
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "browser test: $chromium is missing (apt-get install chromium, as root)" >&2
  fi
fi
