#!/usr/bin/env bash
# Create (or reuse) .venv with everything the tests need. Idempotent; a fresh machine needs only
# Python 3.11 and pip. torch 2.13.0 is installed first so nothing pulls a different build.
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
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -r requirements-dev.txt
  echo "$want" > "$stamp"
fi
