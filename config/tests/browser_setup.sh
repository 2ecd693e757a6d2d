#!/usr/bin/env bash
# What the real-browser tests (organizations/tests/test_admin_browser.py) need
# beyond requirements/dev.txt: Debian's Chromium at /usr/bin/chromium.
# Idempotent and quiet: does nothing when Chromium is already there.
# The Python side (the `playwright` package) comes from requirements/dev.txt;
# never `playwright install`: the tests drive the system Chromium.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: $CHROMIUM is missing and installing it needs root (apt-get install chromium)" >&2
    exit 1
  fi
  echo "installing chromium (Debian package)"
  export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  # apt's chatter goes to the log, shown only if something fails.
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "error: could not install chromium" >&2
    exit 1
  fi
fi

"$CHROMIUM" --version >/dev/null 2>&1 || {
  echo "error: $CHROMIUM is installed but does not run" >&2
  exit 1
}
