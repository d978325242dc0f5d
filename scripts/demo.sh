#!/usr/bin/env bash
# Set up (first run only; the package alone: no test tools, no browser) and remove the object from the
# bundled example scene, offline, on the CPU.
# Writes attentive_eraser_demo.png: input with the mask outlined | raw output | pasted-back output.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
exec .venv/bin/attentive-eraser demo -o "${1:-attentive_eraser_demo.png}"
