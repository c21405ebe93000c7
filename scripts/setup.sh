#!/usr/bin/env bash
# Create .venv (Python 3.11) and install tempipe with pinned CPU torch first.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch pinned before everything else so nothing can pull a multi-GB CUDA build.
.venv/bin/pip install -qq torch==2.13.0
.venv/bin/pip install -qq -r requirements.txt
.venv/bin/pip install -qq --no-deps -e .
