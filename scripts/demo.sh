#!/usr/bin/env bash
# Set up (idempotent) and analyse the built-in hot-injection-like demo batch into results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/tempipe analyze --demo hot-injection --out results/hot-injection "$@"
