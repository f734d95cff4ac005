"""Computed (not measured: no GPU was lent) VRAM figures for a 16-frame 512² clip on the full-size model, and what
the host's memory manager (ComfyUI 0.3.75) makes of them on 6, 8 and 12 GB cards.

    .venv/bin/python bench/vram_budget.py [--out bench/results/vram_budget.json]

- weights: parameter counts of the real layouts (tests/fixture_files.py: InstructPix2Pix's 8-channel SD-1.5 UNet,
  AnimateDiff v1/v2/v3 motion modules with their `pe` tables, a VIDiff checkpoint's image MLP), at fp16;
- activations, one UNet call, fp16, per frame (frames are the batch; a clip is one cond, the least the host
  batches): the skip connections the UNet holds plus the largest transient, the feed-forward of the 64×64 level
  (spatial and temporal alike: GEGLU 320 -> 2·1280, input and output kept); attention as torch's SDPA
  (memory-efficient: no L×L matrix), which the host uses on NVIDIA cards;
- the host's own estimate: `BaseModel.memory_required` with SDPA (area · 2 B · 0.01 MiB), which decides how
  many branches (16-frame conds) it batches per call (`calc_cond_batch`: estimate · 1.5 < free memory) and how
  much it keeps free when loading (0.8 GiB + 0.4 GiB reserved, or the estimate for 16 frames, the larger).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import fixture_files as ff  # noqa: E402

GIB, MIB = 1024**3, 1024**2
FP16 = 2
FRAMES, LATENT = 16, 64  # 512² / 8
LEVELS = [(320, 64), (640, 32), (1280, 16), (1280, 8)]  # (channels, latent side) per UNet level at 512²
RESERVED = 0.4 * GIB  # the host's EXTRA_RESERVED_VRAM (Linux); --reserve-vram replaces it
CONTEXT = 0.6 * GIB  # assumption: CUDA context, cuBLAS/cuDNN workspaces, the desktop


def params(shapes) -> int:
    total = 0
    for shape in shapes.values():
        n = 1
        for d in shape:
            n *= d
        total += n
    return total


def weights() -> dict[str, int]:
    from vidiff_model.config import ImageInstructionConfig

    image = ImageInstructionConfig()
    mlp = image.clip_embed_dim * image.hidden_dim + image.hidden_dim  # Linear 1
    mlp += image.hidden_dim * image.num_tokens * 768 + image.num_tokens * 768 + 2 * 768  # Linear 2, LayerNorm
    out = {"unet_ip2p": params(ff.ldm_unet_shapes(in_channels=8)), "image_mlp": mlp}
    for version in ("v1", "v2", "v3"):
        out[f"temporal_{version}"] = params(ff.motion_module_shapes(version))
    return out


def activation_bytes_per_frame() -> dict[str, float]:
    """fp16 bytes per frame held at the peak of one UNet call (see the module docstring)."""
    skips = 0
    for i, (c, side) in enumerate(LEVELS):  # conv_in + 2 resnets at level 0, 2 resnets + downsampler elsewhere
        skips += (3 if i == 0 else 2) * c * side * side
        if i < len(LEVELS) - 1:
            skips += c * (side // 2) ** 2  # the downsampler's output
    c, side = LEVELS[0]
    tokens = side * side
    # residual input, LayerNorm output, GEGLU projection (2 · 4c), gelu(gate) and value · gelu(gate) (4c each)
    feed_forward = tokens * (c + c + 8 * c + 4 * c + 4 * c)
    return {"skips": skips * FP16, "feed_forward_64": feed_forward * FP16,
            "peak": (skips + feed_forward) * FP16, "attention_matrix_without_sdpa": 8 * tokens * tokens * FP16}


def host_estimate(frames: int, width: int = FP16) -> float:
    """ComfyUI's BaseModel.memory_required for `frames` latents of 64×64 with SDPA, `width`-byte dtype (bytes)."""
    return frames * LATENT * LATENT * width * 0.01 * MIB


def card(vram_gib: float, model_bytes: float, width: int = FP16) -> dict:
    """What the host does with a card of `vram_gib` and weights computing in a `width`-byte dtype: whole or partial
    load, and branches per UNet call."""
    free = vram_gib * GIB - CONTEXT
    keep = max(0.8 * GIB + RESERVED, host_estimate(FRAMES, width) + RESERVED)  # minimum_memory_required when loading
    room = free - keep  # lowvram_model_memory on NVIDIA (MIN_WEIGHT_MEMORY_RATIO 0)
    loaded = min(model_bytes, room)
    left = free - loaded
    per_call = max([n for n in (3, 2, 1) if host_estimate(n * FRAMES, width) * 1.5 < left] or [1])
    return {"free_gib": free / GIB, "weights_room_gib": room / GIB, "loaded_gib": loaded / GIB,
            "offloaded_gib": (model_bytes - loaded) / GIB, "branches_per_call": per_call,
            "activations_peak_gib": per_call * FRAMES * activation_bytes_per_frame()["peak"] * width / FP16 / GIB}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "vram_budget.json"))
    args = parser.parse_args()
    w = weights()
    model = (w["unet_ip2p"] + w["temporal_v2"]) * FP16
    act = activation_bytes_per_frame()
    result = {
        "computed": True, "frames": FRAMES, "size": 512, "dtype": "fp16", "context_assumed_gib": CONTEXT / GIB,
        "params_m": {k: round(v / 1e6, 2) for k, v in w.items()},
        "weights_gib": {k: round(v * FP16 / GIB, 3) for k, v in w.items()},
        "activations_per_frame_mib": {k: round(v / MIB, 1) for k, v in act.items()},
        "activations_gib": {f"{n} branch(es)": round(n * FRAMES * act["peak"] / GIB, 2) for n in (1, 3)},
        "host_estimate_gib": {f"{n} branch(es)": round(host_estimate(n * FRAMES) / GIB, 2) for n in (1, 2, 3)},
    }
    for name, width in (("cards", FP16), ("cards_fp32", 4)):  # fp32: Load VIDiff Model's weight_dtype fp32
        result[name] = {f"{g} GB": {k: round(v, 2) if isinstance(v, float) else v
                                    for k, v in card(g, model * width / FP16, width).items()}
                        for g in (6, 8, 12)}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
