#!/usr/bin/env bash
# The main job: start ComfyUI with this pack and its example workflows (template browser: VIDiff).
# COMFYUI_PATH unset: the pinned ComfyUI 0.3.75 is provisioned into .comfyui/ComfyUI (models go in
# .comfyui/ComfyUI/models/...). Extra arguments go to ComfyUI's main.py (e.g. --port 8189).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
COMFY="$(bash scripts/provision_comfyui.sh)"
device_args=()
"$ROOT/.venv/bin/python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || device_args=(--cpu)
cd "$COMFY"
echo "ComfyUI with VIDiff at http://127.0.0.1:8188 (models: $COMFY/models)" >&2
exec "$ROOT/.venv/bin/python" main.py --listen 127.0.0.1 --port 8188 "${device_args[@]}" "$@"
