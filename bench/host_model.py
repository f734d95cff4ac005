"""Benchmark: VIDiff on the host's MODEL against the library's model, CPU seconds per step and peak RSS.

    .venv/bin/python bench/host_model.py [--steps 4] [--out bench/results/host_model.json]

For each model (the tiny test config with an image MLP, random; the shipped vidiff-mini) and each path, a fresh
process inside the provisioned ComfyUI tree loads the model and translates 16 frames (the mini's 128² frames:
16×16 latents) with dual guidance (s_V 1.5, s_T 7.5: three branches per step) and the host's Euler:
- library: the diffusers VIDiffModel, the host's Euler over the library's guided ε (VIDiff Sampler before the
  host MODEL);
- host: Load VIDiff Model's host MODEL (the host's own UNet + VIDiff's temporal layers), VIDiff Sampler's
  translation (`nodes/host_sampling.py`).
s/step is the mean time between step callbacks after the first step; peak RSS is the process's VmHWM (model
loading included).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRAMES, LATENT = 16, 16


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(model_name: str, path_name: str, steps: int) -> dict:
    """One measurement (run inside the ComfyUI tree: imports tests/host_checks.py's host setup)."""
    sys.path[:0] = [str(ROOT / "tests")]
    import host_checks as hc  # noqa: E402  (sets up the host and the pack, as ComfyUI imports it)
    import torch

    hc.STEPS = steps
    work = Path(tempfile.mkdtemp(prefix="vidiff_bench_host_"))
    if model_name == "mini":
        file = ROOT / "models" / "vidiff" / "vidiff_mini.safetensors"
    else:
        torch.manual_seed(0)
        file = work / "tiny.safetensors"
        hc.vm.save_vidiff(hc.vm.VIDiffModel(hc.vm.tiny_config(image_instruction=True)), file)
    g = torch.Generator().manual_seed(0)
    source = torch.randn(1, 4, FRAMES, LATENT, LATENT, generator=g)
    text, null = torch.randn(1, 77, 768, generator=g), torch.randn(1, 77, 768, generator=g) * 0.1
    stamps: list[float] = []
    started = time.perf_counter()
    if path_name == "library":
        model = hc.vm.load_vidiff(file, dtype=torch.float32).eval()
        tokens, null_tokens = model.encode_instruction(text), model.null_instruction(null)
        sampler = hc.LibraryOnHostSampler("euler", "normal", steps, hc.SEED, model.config.beta_schedule)
    else:
        patcher = hc.loaders.load_vidiff_model(str(file), file.name, "fp32")
        model = hc.host_sampling.HostVideoModel(patcher)
        tokens, null_tokens = model.encode_instruction(text), model.null_instruction(null)
        sampler = hc.host_sampling.HostClipSampler(model, "euler", "normal", steps, hc.SEED)
    loaded = time.perf_counter() - started
    hc.vm.translate_video(model, source, tokens, null_tokens, seed=hc.SEED, sampler=sampler,
                          guidance=hc.vm.GuidanceConfig(1.5, 7.5), callback=lambda info: stamps.append(time.perf_counter()))
    gaps = [b - a for a, b in zip(stamps[:-1], stamps[1:])]
    return {"model": model_name, "path": path_name, "frames": FRAMES, "latent": LATENT, "steps": steps,
            "load_s": round(loaded, 2), "s_per_step": round(sum(gaps) / len(gaps), 3),
            "peak_rss_mib": round(_peak_rss_mib(), 1), "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="steps per run (the first is not timed)")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one, args.steps)))
        return
    comfy = subprocess.run(["bash", str(ROOT / "scripts" / "provision_comfyui.sh")], capture_output=True, text=True,
                           check=True).stdout.strip().splitlines()[-1]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    rows = []
    for model_name in ("tiny", "mini"):
        for path_name in ("library", "host"):
            out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--one", model_name, path_name,
                                  "--steps", str(args.steps)], cwd=comfy, env=env, capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(out.stderr[-3000:])
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
