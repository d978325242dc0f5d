#!/usr/bin/env bash
# Create .venv (if missing) and install attentive-eraser into it. Idempotent, offline-safe once the
# packages are cached. torch is pinned first: on these machines torch==2.13.0 is a CPU wheel on disk,
# while an unpinned torch would pull a multi-GB CUDA build.
#
#   bash scripts/setup.sh          the package alone: enough for the CLI, the Python API and the demo
#   bash scripts/setup.sh --test   also the test tools, the web app and the browser its tests drive
#                                  (Debian's chromium, installed with apt: needs root or sudo)
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_TESTS=0
for argument in "$@"; do
  case "$argument" in
    --test) WITH_TESTS=1 ;;
    *) echo "usage: bash scripts/setup.sh [--test]" >&2; exit 2 ;;
  esac
done
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
python -c "import torch" 2>/dev/null || python -m pip install --quiet "torch==2.13.0"
if [ "$WITH_TESTS" != 1 ]; then
  python -m pip install --quiet -e .
  exit 0
fi
python -m pip install --quiet -e ".[test,app]"

bash scripts/install_browser.sh
