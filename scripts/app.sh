#!/usr/bin/env bash
# Set up (idempotent) and open the dashboard on the built-in demo data:
# streamlit run app.py, demo batches (hot-injection and LARP) loaded on the first visit.
# Extra arguments go to streamlit, e.g. `bash scripts/app.sh --server.port 8600`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TEMPIPE_AUTOLOAD_DEMO="${TEMPIPE_AUTOLOAD_DEMO:-1}"
exec .venv/bin/streamlit run app.py "$@"
