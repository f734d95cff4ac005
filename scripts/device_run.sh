#!/usr/bin/env bash
# vidiff-mini on a lent GPU machine, within one call: bash scripts/device_run.sh [BUDGET_S=500] [--micro] [ARGS...]
# Run from the repository root there, carrying device_pack/ (made here by scripts/device_pack.sh). It puts
# the carried wheels on the path (only those the machine lacks: diffusers, ...), then runs
# vidiff_model.device_run.run: benchmark, autoencoder, latents, UNet, each stopping on the clock, files to
# $OUT (default ./device_out) as they appear. A second call on the same machine resumes (state: runs/device).
# Env: PYTHON (default python3), DEVICE_PACK, DEVICE_WORK, DEVICE_WHEELS_FORCE (wheels to unpack even when
# installed: the CPU test's way to exercise them). Other ARGS go to the driver (--help lists them).
set -euo pipefail
export DEVICE_RUN_T0=${DEVICE_RUN_T0:-$(date +%s.%N)}  # the budget counts from here
cd "$(dirname "$0")/.."
BUDGET=${1:-500}
shift || true
PY=${PYTHON:-python3}
PACK=${DEVICE_PACK:-device_pack}
WORK=$(mkdir -p "${DEVICE_WORK:-runs/device}" && cd "${DEVICE_WORK:-runs/device}" && pwd)
OUT=${OUT:-$PWD/device_out}
mkdir -p "$OUT"
LOG="$OUT/device_run.log"
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=10 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
{
  echo "device_run.sh: budget ${BUDGET} s, pack ${PACK}, work ${WORK}, out ${OUT}, $(date -u +%FT%TZ)"
  "$PY" -m vidiff_model.device_run.wheels "$PACK/wheels" "$WORK/site" --force "${DEVICE_WHEELS_FORCE:-}"
} 2>&1 | tee -a "$LOG"
export PYTHONPATH="$PWD:$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -m vidiff_model.device_run.run --budget "$BUDGET" --pack "$PACK" --work "$WORK" --out "$OUT" "$@" 2>&1 \
  | tee -a "$LOG"
