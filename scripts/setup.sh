#!/usr/bin/env bash
# Create .venv (if missing) and install attentive-eraser with its test tools. Idempotent, offline-safe
# once the packages are cached. torch is pinned first: on these machines torch==2.13.0 is a CPU wheel
# on disk, while an unpinned torch would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
python -c "import torch" 2>/dev/null || python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".[test]"
