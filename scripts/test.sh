#!/usr/bin/env bash
# Set up (first run only) the package with its test tools, the web app and Chromium, then run the offline
# test suite. Extra arguments go to pytest. Chromium comes from Debian with apt-get, as root or with sudo
# (scripts/setup.sh prints a line before it does; ATTENTIVE_ERASER_NO_BROWSER=1 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE
exec .venv/bin/python -m pytest -q "$@"
