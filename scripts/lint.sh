#!/usr/bin/env bash
# Lint, format check and type check, as CI runs them (after the tests): ruff (rules E, F, I, W, B),
# ruff format and mypy over the package. Run `bash scripts/setup.sh --test` once first.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
