#!/usr/bin/env bash
# Make device_pack/, the folder carried to a lent GPU machine for scripts/device_run.sh (run it here, on the
# CPU machine, first): the training clips only (compact WebP), the wheels the device lacks (diffusers, ...;
# fetched once into .cache/device_wheels for Python 3.12 / manylinux) and the CLIP tokenizer. Prints the
# pack's size and fails if the working tree and the pack together would exceed the device's 64 MiB.
# Env: DATA (default data/mini, made by python -m vidiff_model.mini.data when absent), PACK (default
# device_pack). Other arguments go to python -m vidiff_model.device_run.pack (--quality, --clips, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DATA=${DATA:-data/mini}
if [ ! -f "$DATA/split.json" ]; then
  if [ "$DATA" != data/mini ]; then
    echo "error: $DATA/split.json not found: make the data with python -m vidiff_model.mini.data $DATA" >&2
    exit 2
  fi
  "$PY" -m vidiff_model.mini.data "$DATA"
fi
[ -n "${VIDIFF_COMFYUI:-}${COMFYUI_PATH:-}" ] || [ -d .comfyui/ComfyUI/comfy/sd1_tokenizer ] \
  || bash scripts/provision_comfyui.sh >/dev/null  # the CLIP tokenizer files (comfy/sd1_tokenizer)
exec "$PY" -m vidiff_model.device_run.pack --data "$DATA" --out "${PACK:-device_pack}" "$@"
