"""Evaluate a translated video: the paper's metrics as a table, JSON and CSV.

    python -m vidiff_model.evaluate --pred OUT.mp4 [--ref GT.mp4] [--task recolor] [--text "..."]
        [--clip-model DIR] [--lpips-alexnet F --lpips-heads F] [--fid-inception F]
        [--json metrics.json] [--csv metrics.csv] [--no-flow]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys

from .errors import VIDiffError
from .metrics import CLIPScorer, FIDScorer, LPIPSScorer, evaluate_video
from .video_io import read_video

# the figures the paper reports first for each task (all computed ones are in the JSON/CSV)
TASK_METRICS = {
    "recolor": ["colorfulness", "cdc", "warping_error", "psnr", "ssim"],
    "dehaze": ["psnr", "ssim", "warping_error"], "deblur": ["psnr", "ssim", "warping_error"],
    "inpaint": ["psnr", "ssim", "warping_error"], "segmentation": ["psnr", "ssim"],
    "style": ["clip_text_alignment", "clip_frame_consistency", "warping_error"],
    "long_video": ["warping_error", "clip_frame_consistency", "cdc"],
}


def format_table(metrics: dict, task: str | None = None) -> str:
    keys = TASK_METRICS.get(task, []) + [k for k in metrics if k not in TASK_METRICS.get(task, [])]
    lines = []
    for key in keys:
        if key not in metrics:
            continue
        value = metrics[key]
        text = value if isinstance(value, str) else ("inf" if math.isinf(value) else f"{value:.4f}")
        lines.append(f"{key:24s} {text}")
    return "\n".join(lines)


def _jsonable(value):
    """JSON has no inf or nan: inf (identical videos' PSNR) becomes "inf", nan (undefined) null."""
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vidiff_model.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--pred", required=True, help="the translated video (file or frame folder)")
    parser.add_argument("--ref", help="the ground-truth video, for PSNR/SSIM")
    parser.add_argument("--task", choices=sorted(TASK_METRICS), help="order the table by what the task reports")
    parser.add_argument("--text", help="the instruction, for CLIP text alignment")
    parser.add_argument("--clip-model", help="a local transformers CLIPModel folder (never downloaded)")
    parser.add_argument("--lpips-alexnet", help="local torchvision AlexNet weights, for LPIPS")
    parser.add_argument("--lpips-heads", help="local LPIPS v0.1 linear heads (alex.pth), for LPIPS")
    parser.add_argument("--fid-inception", help="local torchvision Inception-v3 weights, for FID")
    parser.add_argument("--json", help="write the metrics as JSON")
    parser.add_argument("--csv", help="write the metrics as CSV (one row)")
    parser.add_argument("--no-flow", action="store_true", help="skip the optical-flow warping error")
    args = parser.parse_args(argv)
    try:
        pred = read_video(args.pred, "pred")
        ref = read_video(args.ref, "ref") if args.ref else None
        clip = CLIPScorer(args.clip_model) if args.clip_model else None
        if bool(args.lpips_alexnet) != bool(args.lpips_heads):
            raise VIDiffError("lpips: give both --lpips-alexnet and --lpips-heads")
        lpips = LPIPSScorer(args.lpips_alexnet, args.lpips_heads) if args.lpips_alexnet else None
        fid = FIDScorer(args.fid_inception) if args.fid_inception else None
        metrics = evaluate_video(pred, ref, clip=clip, text=args.text, flow=not args.no_flow, lpips=lpips, fid=fid)
    except (VIDiffError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(metrics, args.task))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: _jsonable(v) for k, v in metrics.items()}, f, indent=2)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(metrics))
            writer.writeheader()
            writer.writerow(metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
