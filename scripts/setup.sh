#!/usr/bin/env bash
# Create .venv with the CPU build of PyTorch and persam (editable, with the dev tools). Idempotent.
# PyTorch comes first and pinned: a bare "torch" requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${PERSAM_TORCH:-torch==2.13.0}

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PYTHON" -m venv .venv
fi
PY=.venv/bin/python
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "[setup] installing $TORCH_SPEC (CPU build)"
  # shellcheck disable=SC2086  # PERSAM_TORCH may hold several pip arguments
  "$PY" -m pip install -q $TORCH_SPEC
fi
echo "[setup] installing persam"
"$PY" -m pip install -q -e ".[dev]"
"$PY" -c "import torch, persam; print(f'[setup] persam {persam.__version__}, torch {torch.__version__}')"
