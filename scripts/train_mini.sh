#!/usr/bin/env bash
# Train vidiff-mini from scratch on a CPU, every step seeded, and put the results where the pack ships them:
#   models/vae/vidiff_mini_vae.safetensors, models/vidiff/vidiff_mini.safetensors, sample_clips/vidiff_mini_sample.webp
# Stages (each resumes where it stopped when run again): footage -> split -> autoencoder -> latents -> UNet
# -> the autoencoder's decoder alone, longer, on larger crops (its encoder frozen: latents and UNet stay valid).
# The text encoder is not trained: it is generated from a fixed seed (vidiff_model.mini.text_encoder).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_venv.sh
bash scripts/provision_comfyui.sh >/dev/null  # the CLIP tokenizer files (comfy/sd1_tokenizer)
PY=.venv/bin/python
AE_STEPS=${AE_STEPS:-4000}   # the autoencoder's learning-rate schedule (32-px crops, lr 5e-4) ...
AE_STOP=${AE_STOP:-}         # ... and, when set, an earlier step to stop at
UNET_STEPS=${UNET_STEPS:-}   # empty: configs/train/mini.yaml's max_steps
DECODER_STEPS=${DECODER_STEPS:-3000}  # the decoder's own schedule (64-px crops, lr 5e-4)
$PY -m vidiff_model.mini.data data/mini                                   # 78 clips -> 70 train / 8 validation
$PY -m vidiff_model.mini.text_encoder                                     # models/text_encoders/vidiff_mini_clip_l.safetensors
nice -n 5 $PY -W ignore -m vidiff_model.mini.autoencoder --data data/mini --out runs/mini_vae --steps "$AE_STEPS" --crop 32 --lr 5e-4 ${AE_STOP:+--stop-at "$AE_STOP"}
$PY -W ignore -m vidiff_model.mini.latents --data data/mini --vae runs/mini_vae/vidiff_mini_vae.safetensors --chunks 2
$PY -W ignore -m vidiff_model.train --config configs/train/mini.yaml ${UNET_STEPS:+--max-steps "$UNET_STEPS"}
nice -n 5 $PY -W ignore -m vidiff_model.mini.autoencoder --data data/mini --out runs/mini_vae_decoder \
  --decoder-of runs/mini_vae/vidiff_mini_vae.safetensors --steps "$DECODER_STEPS" --crop 64 --lr 5e-4
mkdir -p models/vae models/vidiff
cp runs/mini_vae_decoder/vidiff_mini_vae.safetensors models/vae/vidiff_mini_vae.safetensors
cp runs/mini/vidiff.safetensors models/vidiff/vidiff_mini.safetensors
$PY -m vidiff_model.mini.sample_clip data/mini sample_clips/vidiff_mini_sample.webp
