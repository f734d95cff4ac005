"""Benchmark: how much the norm semantics change a translation, on the full-size model built from parts.

    .venv/bin/python bench/fidelity.py [--unet IP2P.safetensors --motion-module MM.ckpt] [--version v2]
                                       [--frames 20 --size 128 --steps 3]

Builds VIDiff from an InstructPix2Pix file and an AnimateDiff motion module (without files: full-size random
fixtures in the real layouts, IP2P + the chosen version) and translates one random source latent with the same
seed, Euler, s_V 1.5 / s_T 7.5, under three semantics sharing the same weights:
  original   what `build` records: the original AnimateDiff's norms for the version (temporal per frame;
             spatial per frame for v2/v3, over the clip for v1);
  legacy     what VIDiff computed before (and files without the fields still do): temporal GroupNorm over
             the clip (diffusers' AnimateDiffTransformer3D), spatial per frame;
  no motion  the temporal modules' proj_out zeroed: the motion module's whole effect.
It prints relative L2 distances ‖a − b‖ / ‖a‖ between the results (raw latents).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unet")
    parser.add_argument("--motion-module")
    parser.add_argument("--version", choices=["v1", "v2", "v3"], default="v2", help="fixture version without files")
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--size", type=int, default=128, help="pixels (the latent is size/8)")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    import torch

    from vidiff_model import DiffusersSampler, GuidanceConfig, build_vidiff_from_parts, translate_video
    from vidiff_model.checkpoints.state import empty_model

    with tempfile.TemporaryDirectory() as tmp:
        if args.unet and args.motion_module:
            unet, motion = args.unet, args.motion_module
        else:
            from fixture_files import ldm_checkpoint_tensors, ldm_unet_shapes, motion_module_tensors, save_tensors

            print(f"generating full-size fixtures (IP2P + {args.version}) ...", flush=True)
            unet = save_tensors(Path(tmp) / "ip2p.safetensors",
                                ldm_checkpoint_tensors(ldm_unet_shapes(in_channels=8), dtype=torch.float16, seed=4))
            motion = save_tensors(Path(tmp) / f"mm_{args.version}.ckpt",
                                  motion_module_tensors(args.version, dtype=torch.float16, seed=5))
        model, report = build_vidiff_from_parts(unet, motion, dtype=torch.float32)
    print(report.notes[-1])

    def variant(unet_config=None, zero_motion_out=False):
        other = empty_model(replace(model.config, unet=unet_config or model.config.unet))
        state = dict(model.state_dict())  # the same tensors: no copy
        if zero_motion_out:
            state.update({k: torch.zeros_like(v) for k, v in state.items() if "motion_modules" in k and ".proj_out." in k})
        other.load_state_dict(state, assign=True)
        return other.eval()

    legacy = replace(model.config.unet, temporal_norm="clip", spatial_norm="per_frame")
    models = {"original": model, "legacy": variant(legacy), "no motion": variant(zero_motion_out=True)}
    g = torch.Generator().manual_seed(0)
    lat = args.size // 8
    source = torch.randn(1, 4, args.frames, lat, lat, generator=g)
    text = torch.randn(1, 77, 768, generator=g)
    results = {}
    for name, m in models.items():
        start = time.perf_counter()
        with torch.no_grad():
            ins, null = m.encode_instruction(text), m.null_instruction(torch.zeros(1, 77, 768))
            results[name] = translate_video(m, source, ins, null, seed=0, guidance=GuidanceConfig(1.5, 7.5),
                                            sampler=DiffusersSampler("euler", "normal", args.steps)).latent
        print(f"{name:10s} {time.perf_counter() - start:6.1f} s", flush=True)

    def rel(a, b):
        return float((results[a] - results[b]).norm() / results[a].norm())

    drift, whole = rel("original", "legacy"), rel("original", "no motion")
    print(f"{args.frames} frames, {args.size}x{args.size}, {args.steps} Euler steps, s_V 1.5 / s_T 7.5, "
          f"schedule {model.config.beta_schedule}")
    print(f"relative L2 original vs legacy:    {drift:.2e}")
    print(f"relative L2 original vs no motion: {whole:.2e}  (legacy drift = {100 * drift / whole:.1f} % of it)")


if __name__ == "__main__":
    main()
