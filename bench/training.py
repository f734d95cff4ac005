"""Benchmark: training speed and memory per optimizer step.

    .venv/bin/python bench/training.py            # CPU: the tiny model at the paper's clip shape
    .venv/bin/python bench/training.py --full     # adds the SD-1.5 size (meant for a GPU)

Runs the real trainer (`vidiff_model.training`) on the demo data (generated videos, random tiny
encoders; a VAE with SD's factor 8, so 256x256 frames give 32x32 latents, as with SD's VAE), batch 1,
each configuration in a fresh process. s/step is the median of the logged steps after the first two
(data reading, VAE and CLIP encoding included); peak memory is the process's peak RSS on the CPU,
`torch.cuda.max_memory_allocated` on a GPU. Weights are random: speed and memory do not depend on them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIGS = [  # (model, frames, size, mixed precision, gradient checkpointing)
    ("tiny", 16, 256, "no", False),
    ("tiny", 16, 256, "no", True),
    ("tiny", 16, 256, "bf16", False),
]
FULL = [("sd15", 16, 256, "bf16", True), ("sd15", 16, 256, "bf16", False)]


def run_one(spec: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="vidiff_train_bench_") as tmp:  # SD-1.5 runs write GBs
        return _run_in(spec, Path(tmp))


def _run_in(spec: dict, work: Path) -> dict:
    import torch
    import yaml

    from vidiff_model.training.config import load_config
    from vidiff_model.training.demo import TINY_CONFIG, make_dataset, make_encoders
    from vidiff_model.training.run_log import read_log
    from vidiff_model.training.trainer import train

    make_dataset(work / "data", frames=spec["frames"] + 2, height=spec["size"], width=spec["size"])
    width = 768 if spec["model"] == "sd15" else 32
    make_encoders(work / "encoders", text_width=width, image_width=width, vae_blocks=4)
    raw = yaml.safe_load(TINY_CONFIG.format(steps=spec["steps"]))
    raw["data"].update(frames=spec["frames"], height=spec["size"], width=spec["size"])
    raw.update(output_dir=str(work / "run"), model={"random": spec["model"]}, mixed_precision=spec["precision"],
               gradient_checkpointing=spec["checkpointing"], save_every=10**6, validation={"samples": 0},
               cpu=not torch.cuda.is_available())
    (work / "train.yaml").write_text(yaml.safe_dump(raw))
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    train(load_config(work / "train.yaml"))
    rates = [r["samples_per_s"] for r in read_log(work / "run")][2:]
    if torch.cuda.is_available():
        peak, device = torch.cuda.max_memory_allocated() / 2**20, torch.cuda.get_device_name()
    else:
        status = Path("/proc/self/status").read_text().splitlines()
        peak = next(int(l.split()[1]) / 1024 for l in status if l.startswith("VmHWM:"))
        device = "cpu"
    return {**spec, "s_per_step": statistics.median(1 / r for r in rates), "peak_mib": peak, "device": device}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true", help="also the SD-1.5 size (GPU)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_one(json.loads(args.one))))
        return 0
    print("| model | frames | size | precision | grad. checkpointing | s/step | peak memory | device |")
    print("|---|---|---|---|---|---|---|---|")
    for model, frames, size, precision, ckpt in CONFIGS + (FULL if args.full else []):
        spec = dict(model=model, frames=frames, size=size, precision=precision, checkpointing=ckpt, steps=args.steps)
        out = subprocess.run([sys.executable, __file__, "--one", json.dumps(spec)], capture_output=True, text=True)
        line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            print(f"| {model} | {frames} | {size} | {precision} | {ckpt} | failed: {out.stderr.strip()[-300:]} |||")
            continue
        r = json.loads(line[7:])
        print(f"| {model} | {frames} | {size}x{size} | {precision} | {'yes' if ckpt else 'no'} | "
              f"{r['s_per_step']:.2f} | {r['peak_mib']:.0f} MiB | {r['device']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
