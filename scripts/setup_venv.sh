#!/usr/bin/env bash
# Create (or reuse) .venv with everything the tests need. Idempotent; a fresh machine needs only
# Python 3.11 and pip. torch and torchvision are installed first, as a matching pair, so nothing pulls
# another build: ComfyUI imports torchvision, and PyPI's torchvision does not load beside torch 2.13.0's
# CPU wheel, so the pair is torch 2.14.1 + torchvision 0.29.1. torchaudio goes in with them: ComfyUI's own
# audio nodes (comfy_extras/nodes_audio*.py) import it, and without it every start logs two "IMPORT FAILED"
# tracebacks. torchaudio 2.11 (the newest release) is built on torch's stable ABI: it asks for
# torch>=2.11 and loads beside 2.14.1 (a 1.8 MB wheel, 11 MB installed; tests/test_comfyui.py checks the log).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.vidiff-deps
want="$(cat requirements-dev.txt requirements.txt scripts/setup_venv.sh | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # the torch, torchvision and torchaudio pins of requirements-dev.txt, as one set
  .venv/bin/python -m pip install -q $(grep -E '^torch(vision|audio)?==' requirements-dev.txt)
  .venv/bin/python -m pip install -q -r requirements-dev.txt
  echo "$want" > "$stamp"
fi
