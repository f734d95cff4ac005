"""Benchmark: sampling speed, memory, batched vs sequential guidance, long-video memory and seams.

    .venv/bin/python bench/sampling.py            # CPU: tiny and medium configs (a few minutes on 2 cores)
    .venv/bin/python bench/sampling.py --full     # adds the full SD-1.5 size (on a GPU: 16 frames, 512x512)
    .venv/bin/python bench/sampling.py --smoke    # seconds: that it runs (tiny, 64x64, 2 steps; figures meaningless)

Every measurement runs in a fresh process, so its peak memory is its own: peak RSS (VmHWM) on the
CPU, `torch.cuda.max_memory_allocated` on a GPU. Seconds per step are the mean over the timed steps
after one warm-up step; "fps" is frames translated per second at 20 steps (frames / (20 × s/step)).
Weights are random (no real VIDiff weights exist yet): speed and memory do not depend on them; the
seam figures show the measure and the modes on a random model and on a closed-form model whose look
drifts from clip to clip (tests/analytic_models.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

MEDIUM = dict(block_out_channels=(64, 128, 256, 256), cross_attn_blocks=(True, True, True, False))


def _peak_mib(device: str) -> float:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _model(size: str, device: str, dtype: str):
    import torch

    from vidiff_model import VIDiffModel, VideoUNetConfig, VIDiffConfig, sd15_config, tiny_config
    from vidiff_model.checkpoints.state import empty_model

    if size == "tiny":
        config = tiny_config(image_instruction=False)
    elif size == "medium":
        config = VIDiffConfig(unet=VideoUNetConfig(**MEDIUM))
    else:
        config = sd15_config()
    torch.manual_seed(0)
    if size == "full":  # skip the random init of 1.3 B parameters: values do not matter for speed
        model = empty_model(config).to_empty(device=device)
        for p in model.parameters():
            p.data.normal_(0, 0.02)
    else:
        model = VIDiffModel(config)
    return model.to(device=device, dtype=getattr(torch, dtype)).eval()


def child(spec: dict) -> dict:
    """One measurement in a fresh interpreter."""
    import torch

    from conftest import randomize_temporal_outputs
    from vidiff_model import DiffusersSampler, GuidanceConfig, LongVideoOptions, translate_video

    device, size = spec["device"], spec["size"]
    model = _model(size, device, spec["dtype"])
    randomize_temporal_outputs(model)
    base = _peak_mib(device)
    g = torch.Generator().manual_seed(1)
    f, h = spec["frames"], spec["latent"]
    source = torch.randn(1, 4, f, h, h, generator=g)
    ins = model.encode_instruction(torch.randn(1, 77, 768, generator=g).to(device))
    null = model.null_instruction(torch.zeros(1, 77, 768, device=device))
    long_video = LongVideoOptions(16, 4, spec["mode"]) if spec.get("mode") else None
    guidance = GuidanceConfig(1.5, 7.5, batched=spec["batched"])
    times: list[float] = []
    last = [time.perf_counter()]

    def on_step(info) -> None:
        if device == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    translate_video(model, source, ins, null, seed=0, sampler=DiffusersSampler("euler", "normal", spec["steps"]),
                    guidance=guidance, long_video=long_video, continuation=lambda n: ins, callback=on_step)
    timed = times[1:] or times
    return {"s_per_step": sum(timed) / len(timed), "steps_run": len(times), "peak_mib": _peak_mib(device),
            "base_mib": base, "params_m": sum(p.numel() for p in model.parameters()) / 1e6}


def measure(**spec) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def seams() -> list[tuple[str, str, float]]:
    """Seam ratio per mode, 48 frames in clips of 16 sharing 4 (plus independent clips as a baseline)."""
    import torch
    from analytic_models import IdealDenoiser, instruction_with_shift

    from conftest import randomize_temporal_outputs
    from vidiff_model import DiffusersSampler, GuidanceConfig, LongVideoOptions, seam_report, translate_video
    from vidiff_model.sampling import make_noise

    rows = []
    tiny = _model("tiny", "cpu", "float32")
    randomize_temporal_outputs(tiny)
    g = torch.Generator().manual_seed(2)
    # a smooth source: a slow drift plus a little per-frame noise, so inner-clip change is realistic
    drift = torch.linspace(0, 1, 48).view(1, 1, 48, 1, 1)
    source = torch.randn(1, 4, 1, 8, 8, generator=g) + drift + 0.05 * torch.randn(1, 4, 48, 8, 8, generator=g)
    tiny_ins = tiny.encode_instruction(torch.randn(1, 77, 768, generator=g))
    tiny_null = tiny.null_instruction(torch.zeros(1, 77, 768))
    ideal = IdealDenoiser(clip_offset=True, max_frames=16)
    cases = [("independent clips", "overlap_guided", 0), ("autoregressive", "autoregressive", 4),
             ("overlap_guided", "overlap_guided", 4), ("sliding_window", "sliding_window", 4)]
    for label, mode, overlap in cases:
        for name, model, ins, null in [("tiny random", tiny, tiny_ins, tiny_null),
                                       ("drifting closed-form", ideal, instruction_with_shift([0.5, 0, 0, 0]),
                                        instruction_with_shift([0.0] * 4))]:
            src = source.double() if name.startswith("drifting") else source
            result = translate_video(model, src, ins, null, seed=0, sampler=DiffusersSampler("euler", "normal", 8),
                                     guidance=GuidanceConfig(1.5, 7.5), long_video=LongVideoOptions(16, overlap, mode),
                                     continuation=lambda n, ins=ins: ins)
            rows.append((label, name, seam_report(result.latent, result.clips).ratio))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also the full SD-1.5 size (GPU recommended)")
    parser.add_argument("--steps", type=int, default=4, help="steps per timed run (first is warm-up)")
    parser.add_argument("--smoke", action="store_true",
                        help="only check that it runs: tiny config, 8 frames at 64x64, 2 steps, no long-video part")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    import torch

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    print(f"torch {torch.__version__}, device {torch.cuda.get_device_name() if cuda else 'cpu'}, "
          f"{torch.get_num_threads()} CPU threads")
    sizes = [("tiny", "float32", 32), ("medium", "float32", 32)]
    if args.full:
        sizes.append(("full", "float16" if cuda else "float32", 64 if cuda else 32))
    frames = 16
    if args.smoke:  # scripts/device_run.sh --micro (tests/test_device_run.py) runs the benchmark this way
        sizes, frames, args.steps = [("tiny", "float32", 8)], 8, 2
    print(f"\n{frames} frames, dual guidance 1.5/7.5, euler; latent side = image side / 8")
    print(f"{'config':8s} {'params M':>9s} {'image':>7s} {'guidance':>10s} {'s/step':>8s} {'fps@20':>8s} {'peak MiB':>9s}")
    for size, dtype, latent in sizes:
        per = {}
        for batched in (True, False):
            r = measure(size=size, dtype=dtype, device=device, frames=frames, latent=latent, steps=args.steps,
                        batched=batched, mode=None)
            per[batched] = r
            print(f"{size:8s} {r['params_m']:9.1f} {latent * 8:5d}px {'batched' if batched else 'sequential':>10s} "
                  f"{r['s_per_step']:8.3f} {frames / (20 * r['s_per_step']):8.2f} {r['peak_mib']:9.0f}")
        print(f"{'':8s} sequential / batched time: {per[False]['s_per_step'] / per[True]['s_per_step']:.2f}x, "
              f"peak memory: {per[False]['peak_mib'] / per[True]['peak_mib']:.2f}x")
    if args.smoke:
        return

    print("\nLong videos, tiny config, 256x256, clips of 16 sharing 4, 2 steps per run: peak memory by length")
    print(f"{'mode':16s} {'frames':>7s} {'peak MiB':>9s} {'after setup':>12s} {'s/step':>8s}")
    for mode in ("autoregressive", "sliding_window"):
        for frames in (16, 64, 256):
            r = measure(size="tiny", dtype="float32", device=device, frames=frames, latent=32, steps=2,
                        batched=True, mode=mode)
            print(f"{mode:16s} {frames:7d} {r['peak_mib']:9.0f} {r['base_mib']:12.0f} {r['s_per_step']:8.3f}")

    print("\nSeam ratio (boundary change / in-clip change; 1.0 = seamless), 48 frames, clips of 16")
    for label, model, ratio in seams():
        print(f"{label:18s} {model:22s} {ratio:6.2f}")


if __name__ == "__main__":
    main()
