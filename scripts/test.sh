#!/usr/bin/env bash
# Set up (idempotent: system packages, .venv, tempipe) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-packages.sh
bash scripts/setup.sh
.venv/bin/python -m pytest -q "$@"
