#!/usr/bin/env bash
# The Debian packages the test suite needs beyond requirements/dev.txt:
#   chromium                  the real-browser admin tests (organizations/tests/test_admin_browser.py)
#   ocrmypdf, tesseract-ocr,  OCR of scanned PDFs and images (documents/extraction/ocr.py);
#   tesseract-ocr-eng         the Docker image installs the same three
#   prometheus                `promtool`: checks and unit-tests the alert rules
#                             (deploy/prometheus/, config/tests/test_alert_rules.py)
# Idempotent and quiet: installs only what is missing, and nothing when all is there.
# The Python side (the `playwright` package) comes from requirements/dev.txt;
# never `playwright install`: the tests drive the system Chromium.
set -euo pipefail

declare -A NEEDS=(
  [chromium]=/usr/bin/chromium
  [ocrmypdf]=/usr/bin/ocrmypdf
  [tesseract-ocr]=/usr/bin/tesseract
  [tesseract-ocr-eng]=/usr/share/tesseract-ocr/5/tessdata/eng.traineddata
  [prometheus]=/usr/bin/promtool
)

missing=()
for package in "${!NEEDS[@]}"; do
  [ -e "${NEEDS[$package]}" ] || missing+=("$package")
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing ${missing[*]}; installing needs root (apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "installing ${missing[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  # apt's chatter goes to the log, shown only if something fails.
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "error: could not install ${missing[*]}" >&2
    exit 1
  fi
fi

/usr/bin/chromium --version >/dev/null 2>&1 || { echo "error: chromium is installed but does not run" >&2; exit 1; }
tesseract --version >/dev/null 2>&1 || { echo "error: tesseract is installed but does not run" >&2; exit 1; }
promtool --version >/dev/null 2>&1 || { echo "error: promtool is installed but does not run" >&2; exit 1; }
