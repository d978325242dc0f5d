#!/usr/bin/env bash
# Regenerate every picture the README and docs show, from the embedded demo model (nothing hand-picked).
#
#   bash scripts/make_figures.sh               demo scene + figure, app examples, app screenshot (~1 min)
#   bash scripts/make_figures.sh --benchmark   also rerun benchmarks/removal_quality.py (~20 min on 2 cores)
#                                              and copy its grid to docs/images/removal_quality_grid.png
#
# Needs the test set-up (bash scripts/setup.sh --test) for the screenshot, which the browser test takes.
set -euo pipefail
cd "$(dirname "$0")/.."
# One thread: a CPU's float sums depend on how many threads share them, and the pictures must come out the
# same on every machine (two threads moved 16 pixels of the demo figure by one level).
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1
[ -x .venv/bin/python ] || { echo "error: scripts/make_figures.sh needs the test set-up: bash scripts/setup.sh --test" >&2; exit 2; }
# the screenshot is taken by the browser test: one line naming the extra when it is missing
.venv/bin/python -c 'from attentive_eraser.runtime import require_extra as r; r("scripts/make_figures.sh", "pytest", "playwright")'
.venv/bin/python scripts/make_demo_scene.py
.venv/bin/attentive-eraser demo -o docs/images/demo.png --quiet
.venv/bin/python scripts/make_app_examples.py
ATTENTIVE_ERASER_SCREENSHOT=docs/images/app.png .venv/bin/python -m pytest -q tests/test_app_browser.py
if [ "${1:-}" = "--benchmark" ]; then
  .venv/bin/python benchmarks/removal_quality.py --threads 2 --no-progress
fi
cp benchmarks/results/removal_quality/grid.png docs/images/removal_quality_grid.png
