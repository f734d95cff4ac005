"""Tell what a weight file is from its key names and shapes alone (no tensor is read).

Used to give a one-line answer when a user puts the wrong file in the wrong place: an SDXL checkpoint
where an SD-1.5 UNet belongs, a VAE where a motion module belongs, and so on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LDM_PREFIX = "model.diffusion_model."
VIDIFF_FORMAT = "vidiff"


@dataclass(frozen=True)
class FileKind:
    """`kind` is a stable identifier; `description` reads well after "this file looks like"."""

    kind: str
    description: str
    unet_prefix: str = ""  # where the UNet keys start, for the SD-family kinds
    motion_version: str = ""  # v1 / v2 / v3 for SD-1.5 motion modules


def _first(shapes: dict[str, tuple], pattern: str) -> tuple[str, tuple] | None:
    rx = re.compile(pattern)
    for k, s in shapes.items():
        if rx.search(k):
            return k, s
    return None


def _identify_sd_unet(shapes: dict[str, tuple], prefix: str) -> FileKind:
    conv_in = shapes[prefix + "input_blocks.0.0.weight"]
    to_k = _first(shapes, "^" + re.escape(prefix) + r".*attn2\.to_k\.weight$")
    context = to_k[1][1] if to_k and len(to_k[1]) == 2 else None
    where = "a full single-file checkpoint" if prefix else "a UNet-only file"
    if prefix + "label_emb.0.0.weight" in shapes or context == 2048:
        return FileKind("sdxl", f"an SDXL checkpoint ({where}, cross-attention {context} wide)", prefix)
    if context == 1024:
        return FileKind("sd2", f"a Stable Diffusion 2.x checkpoint ({where}, cross-attention 1024 wide)", prefix)
    if context != 768 or len(conv_in) != 4 or conv_in[0] != 320:
        return FileKind("sd_unknown", f"an LDM UNet of an unknown size (conv_in {conv_in}, cross-attention {context})", prefix)
    channels = conv_in[1]
    if channels == 8:
        return FileKind("ip2p", f"an InstructPix2Pix (SD-1.5, 8 input channels) UNet ({where})", prefix)
    if channels == 4:
        return FileKind("sd15", f"an SD-1.5 UNet ({where})", prefix)
    if channels == 9:
        return FileKind("sd15_inpaint", f"an SD-1.5 inpainting UNet (9 input channels, {where})", prefix)
    return FileKind("sd_unknown", f"an SD-1.5-like UNet with {channels} input channels", prefix)


def motion_version(max_frames: int | None, has_mid_block: bool) -> str:
    """v1 / v2 / v3 of an AnimateDiff SD-1.5 motion module from its layout: v2 alone has a mid-block module;
    v1's positional tables hold 24 frames, v3's 32."""
    return "v2" if has_mid_block else ("v1" if max_frames == 24 else "v3")


def _identify_motion_module(shapes: dict[str, tuple]) -> FileKind:
    down_blocks = {int(m.group(1)) for k in shapes if (m := re.match(r"down_blocks\.(\d+)\.motion_modules\.", k))}
    original = any(".temporal_transformer." in k for k in shapes)
    layout = "original AnimateDiff layout" if original else "diffusers MotionAdapter layout"
    pe = _first(shapes, r"(pos_encoder|pos_embed)\.pe$")
    length = pe[1][1] if pe and len(pe[1]) == 3 else None
    first_norm = _first(shapes, r"^down_blocks\.0\.motion_modules\.0\..*norm\.weight$")
    width = first_norm[1][0] if first_norm else None
    if len(down_blocks) == 3:
        return FileKind("motion_module_sdxl", f"an AnimateDiff motion module for SDXL ({layout}, 3 down blocks)")
    if len(down_blocks) != 4 or width != 320:
        return FileKind("motion_module_unknown", f"a motion module of an unknown size ({len(down_blocks)} down blocks, width {width})")
    has_mid = any(k.startswith("mid_block.motion_modules.") for k in shapes)
    version = motion_version(length, has_mid)
    return FileKind(
        "motion_module",
        f"an AnimateDiff SD-1.5 motion module ({version}, {layout}, max {length} frames)",
        motion_version=version,
    )


def identify(shapes: dict[str, tuple], metadata: dict[str, str] | None = None) -> FileKind:
    """What the file with these tensor names and shapes is."""
    metadata = metadata or {}
    if metadata.get("format") == VIDIFF_FORMAT:
        return FileKind("vidiff", f"a VIDiff checkpoint (format version {metadata.get('format_version', '?')})")
    keys = shapes.keys()
    if not shapes:
        return FileKind("empty", "an empty file (no tensors)")
    for prefix in (LDM_PREFIX, ""):
        if prefix + "input_blocks.0.0.weight" in shapes:
            return _identify_sd_unet(shapes, prefix)
    if any(k.startswith(LDM_PREFIX + p) for k in keys for p in ("joint_blocks.", "double_blocks.")):
        return FileKind("mmdit", "an SD3 or Flux checkpoint (a transformer, not an SD-1.5 UNet)")
    if any(".motion_modules." in k for k in keys):
        return _identify_motion_module(shapes)
    if any(k.startswith("lora_unet_") or ".lora_down." in k or ".lora_A." in k or "lora_te" in k for k in keys):
        return FileKind("lora", "a LoRA (low-rank adapter weights), not a full model")
    if any(k.startswith(p) for k in keys for p in ("control_model.", "input_hint_block.", "controlnet_cond_embedding.")):
        return FileKind("controlnet", "a ControlNet")
    if any(k.startswith("taesd_encoder.") for k in keys) and any(k.startswith("taesd_decoder.") for k in keys):
        scaled = "vae_scale" in shapes and "vae_shift" in shapes
        return FileKind("taesd", "a TAESD tiny autoencoder in ComfyUI's one-file layout (taesd_encoder, taesd_decoder"
                        + (", vae_scale, vae_shift" if scaled else "") + "), for the host's Load VAE")
    if "encoder.conv_in.weight" in shapes and any(k.startswith("decoder.") for k in keys):
        return FileKind("vae", "a VAE (autoencoder), not a UNet or motion module")
    if any(k.startswith(p) for k in keys for p in ("vision_model.", "visual.")):
        return FileKind("clip_vision", "a CLIP vision encoder")
    if any(("token_embedding.weight" in k) for k in keys):
        return FileKind("clip_text", "a CLIP text encoder")
    if "conv_in.weight" in shapes and any(k.startswith("down_blocks.") for k in keys):
        return FileKind("diffusers_unet", "a UNet in diffusers layout (convert it to a single-file .safetensors)")
    return FileKind("unknown", f"no known model format (first keys: {', '.join(list(keys)[:3])})")
