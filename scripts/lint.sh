#!/usr/bin/env bash
# Lint, format check and type check, as CI runs them (after the tests): ruff (rules E, F, I, W, B),
# ruff format and mypy over the package. Run `bash scripts/setup.sh --test` once first.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "error: scripts/lint.sh needs the test set-up: bash scripts/setup.sh --test" >&2; exit 2; }
.venv/bin/python -c 'from attentive_eraser.runtime import require_extra as r; r("scripts/lint.sh", "ruff", "mypy")'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
