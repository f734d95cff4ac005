#!/usr/bin/env bash
# The main job (for now, until the ComfyUI nodes land): the VIDiff command line, in .venv.
#   bash scripts/run.sh info FILE...
#   bash scripts/run.sh build --unet IP2P.safetensors --motion-module MM.ckpt --out models/vidiff/NAME.safetensors
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_venv.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m vidiff_model "$@"
