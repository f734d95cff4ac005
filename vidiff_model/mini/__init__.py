"""vidiff-mini: a small VIDiff model trained by this project on real footage, shipped with the pack.

Files (paths relative to the pack root):
- `models/vae/vidiff_mini_vae.safetensors`: TAESD-architecture autoencoder in the host's single-file
  TAESD layout (`taesd_encoder.*`, `taesd_decoder.*`, `vae_scale`, `vae_shift`);
- `models/text_encoders/vidiff_mini_clip_l.safetensors`: SD-1.5's clip_l layout with weights drawn from a
  fixed seed (generated on first use, identical bytes everywhere; not committed: 246 MB);
- `models/vidiff/vidiff_mini.safetensors`: the VIDiff checkpoint (`mini_config()`), fp16;
- `sample_clips/vidiff_mini_sample.webp`: a short clip from the validation split.
"""

from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = PACK_ROOT / "models"
MINI_VAE = MODELS_DIR / "vae" / "vidiff_mini_vae.safetensors"
MINI_TEXT_ENCODER = MODELS_DIR / "text_encoders" / "vidiff_mini_clip_l.safetensors"
MINI_VIDIFF = MODELS_DIR / "vidiff" / "vidiff_mini.safetensors"
SAMPLE_CLIP = PACK_ROOT / "sample_clips" / "vidiff_mini_sample.webp"
EXAMPLES_DIR = PACK_ROOT / "sample_clips"  # the clips VIDiffLoadSampleClip offers. Not "examples/": ComfyUI
# serves a custom node's examples/ folder as its workflow templates, ahead of workflows/, hiding those.
MEDIA_PACKAGE = "comfyui_workflow_templates_media_video"  # PyPI comfyui-workflow-templates-media-video==0.3.101
MEDIA_PACKAGE_VERSION = "0.3.101"
