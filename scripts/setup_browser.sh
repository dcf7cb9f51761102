#!/usr/bin/env bash
# Install a headless Chromium for the report.html browser test (tests/exports/test_report.py). Idempotent.
# Playwright's own browser download is not used (it is often unreachable): the test drives Debian's
# chromium through the playwright Python package (installed with the dev extra).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "[setup-browser] chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
  exit 0
fi
for other in chromium chromium-browser google-chrome; do
  if command -v "$other" >/dev/null 2>&1; then
    echo "[setup-browser] using $(command -v "$other") (the test finds it on PATH)"
    exit 0
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "[setup-browser] no apt-get here: install Chromium yourself and set PERSAM_CHROMIUM=/path/to/chromium" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "[setup-browser] installing Debian's chromium"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "[setup-browser] $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium installed')"
