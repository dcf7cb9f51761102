#!/usr/bin/env bash
# Set up (if needed), fetch the MobileSAM checkpoint into the user cache, install the browser the page tests
# drive (Debian's chromium), lint, and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_browser.sh
.venv/bin/persam download vit_t
.venv/bin/ruff check src tests bench scripts
.venv/bin/python -m pytest -q "$@"
