"""Command line: inspect weight files and build a VIDiff checkpoint from files users already have.

    python -m vidiff_model info FILE [FILE ...]
    python -m vidiff_model build --unet IP2P.safetensors --motion-module MM.ckpt --out MODEL.safetensors
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from .checkpoints import TensorFile, build_vidiff_from_parts, identify, read_config, save_vidiff
from .config import BETA_SCHEDULE_CHOICES, ImageInstructionConfig
from .errors import VIDiffError

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def cmd_info(args: argparse.Namespace) -> None:
    for path in args.files:
        tf = TensorFile(path)
        kind = identify(tf.shapes, tf.metadata)
        count = sum(_numel(s) for s in tf.shapes.values())
        print(f"{path}: {kind.description}; {len(tf.shapes)} tensors, {count / 1e6:.1f} M values")
        if kind.kind == "vidiff":
            print(f"  config: {read_config(tf).to_json()}")


def _numel(shape: tuple) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def cmd_build(args: argparse.Namespace) -> None:
    start = time.perf_counter()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)  # e.g. models/vidiff, which ComfyUI does not create
    image = ImageInstructionConfig(num_tokens=args.image_tokens) if args.image_tokens else None
    model, report = build_vidiff_from_parts(args.unet, args.motion_module, use_ema=args.ema,
                                            dtype=DTYPES[args.dtype], image_instruction=image,
                                            beta_schedule=args.beta_schedule)
    save_vidiff(model, args.out, metadata={"source_unet": str(args.unet), "source_motion_module": str(args.motion_module)})
    counts = model.num_parameters()
    print(f"{args.out}: {counts['total'] / 1e6:.1f} M parameters (UNet {counts['unet'] / 1e6:.1f} M, "
          f"motion {counts['motion'] / 1e6:.1f} M, image MLP {counts['image_mlp'] / 1e6:.2f} M) "
          f"in {time.perf_counter() - start:.1f} s\n  {report.summary()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vidiff_model", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="say what a weight file is")
    info.add_argument("files", nargs="+")
    info.set_defaults(run=cmd_info)
    build = sub.add_parser("build", help="InstructPix2Pix/SD-1.5 checkpoint + AnimateDiff motion module -> VIDiff file")
    build.add_argument("--unet", required=True, help="InstructPix2Pix or SD-1.5 single-file checkpoint")
    build.add_argument("--motion-module", required=True, help="AnimateDiff SD-1.5 motion module (v1/v2/v3)")
    build.add_argument("--out", required=True, help="output .safetensors")
    build.add_argument("--ema", action="store_true", help="use the UNet's EMA weights (model_ema.*)")
    build.add_argument("--dtype", choices=sorted(DTYPES), default="fp16", help="weight dtype in the output file")
    build.add_argument("--image-tokens", type=int, default=0,
                       help="add a fresh image-instruction MLP with this many tokens (a training start)")
    build.add_argument("--beta-schedule", choices=BETA_SCHEDULE_CHOICES, default="autoselect",
                       help="noise schedule recorded in the file: autoselect (the motion module's, animatediff), "
                            "sd15 (scaled_linear, SD-1.5/InstructPix2Pix) or animatediff (linear)")
    build.set_defaults(run=cmd_build)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except VIDiffError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
