#!/usr/bin/env bash
# The test command: set up .venv and the pinned ComfyUI, then run the whole suite offline
# (no model hub is ever reached; tests generate their own weights).
set -euo pipefail
cd "$(dirname "$0")/.."
VIDIFF_COMFYUI="$(bash scripts/provision_comfyui.sh)"
bash scripts/install_browser.sh
export VIDIFF_COMFYUI
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1
# pytest runs from tests/ (its rootdir, see tests/pytest.ini); extra arguments are relative to tests/,
# e.g. `bash scripts/test.sh test_model.py -k forward` or `bash scripts/test.sh -m "not comfyui"`.
cd tests
exec ../.venv/bin/python -m pytest "$@"
