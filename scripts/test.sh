#!/usr/bin/env bash
# The test command: set up .venv, then run the whole suite offline (no model hub is ever reached).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_venv.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1
exec .venv/bin/python -m pytest -c tests/pytest.ini --rootdir tests "$@"
