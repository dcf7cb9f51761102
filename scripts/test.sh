#!/usr/bin/env bash
# Set up (if needed), fetch the MobileSAM checkpoint into the user cache, lint, and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/persam download vit_t
.venv/bin/ruff check src tests bench scripts
.venv/bin/python -m pytest -q "$@"
