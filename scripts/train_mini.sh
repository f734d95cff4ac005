#!/usr/bin/env bash
# Train vidiff-mini from scratch on a CPU, every step seeded, and put the results where the pack ships them:
#   models/vae/vidiff_mini_vae.safetensors, models/vidiff/vidiff_mini.safetensors, sample_clips/vidiff_mini_sample.webp
# Stages (each resumes where it stopped when run again): footage -> split -> autoencoder -> latents -> UNet (A),
# then more latents -> decoder alone -> UNet continued (B).
# The text encoder is not trained: it is generated from a fixed seed (vidiff_model.mini.text_encoder).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_venv.sh
bash scripts/provision_comfyui.sh >/dev/null  # the CLIP tokenizer files (comfy/sd1_tokenizer)
PY=.venv/bin/python
AE_STEPS=${AE_STEPS:-1000}   # the autoencoder's learning-rate schedule ...
AE_STOP=${AE_STOP:-500}      # ... and where the shipped one stopped (CPU time; see README)
UNET_STEPS=${UNET_STEPS:-}   # empty: configs/train/mini.yaml's max_steps
DEC_STEPS=${DEC_STEPS:-600}  # stage B: the decoder alone
REFINE_STEPS=${REFINE_STEPS:-}  # empty: configs/train/mini_refine.yaml's max_steps
$PY -m vidiff_model.mini.data data/mini                                   # 78 clips -> 70 train / 8 validation
$PY -m vidiff_model.mini.text_encoder                                     # models/text_encoders/vidiff_mini_clip_l.safetensors
# Stage A: autoencoder (encoder + decoder), latents of one chunk per clip, UNet from scratch (configs/train/mini.yaml)
nice -n 5 $PY -W ignore -m vidiff_model.mini.autoencoder --data data/mini --out runs/mini_vae --steps "$AE_STEPS" --stop-at "$AE_STOP"
$PY -W ignore -m vidiff_model.mini.latents --data data/mini --vae runs/mini_vae/vidiff_mini_vae.safetensors --chunks 1
$PY -W ignore -m vidiff_model.train --config configs/train/mini.yaml ${UNET_STEPS:+--max-steps "$UNET_STEPS"}
# Stage B: the encoder stays frozen (its latents stay valid): latents of two chunks per clip, the decoder trained
# on alone, the UNet continued with min-SNR weighting (configs/train/mini_refine.yaml)
$PY -W ignore -m vidiff_model.mini.latents --data data/mini --vae runs/mini_vae/vidiff_mini_vae.safetensors --chunks 2 --out data/mini/latents2
nice -n 5 $PY -W ignore -m vidiff_model.mini.autoencoder --data data/mini --out runs/mini_vae_decoder --steps "$DEC_STEPS" --lr 5e-4 --decoder-of runs/mini_vae/vidiff_mini_vae.safetensors
$PY -W ignore -m vidiff_model.train --config configs/train/mini_refine.yaml ${REFINE_STEPS:+--max-steps "$REFINE_STEPS"}
mkdir -p models/vae models/vidiff
cp runs/mini_vae_decoder/vidiff_mini_vae.safetensors models/vae/vidiff_mini_vae.safetensors
cp runs/mini_refine/vidiff.safetensors models/vidiff/vidiff_mini.safetensors
$PY -m vidiff_model.mini.sample_clip data/mini sample_clips/vidiff_mini_sample.webp
