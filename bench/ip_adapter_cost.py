"""Benchmark: what IPAdapter_plus's cross-attention patch costs per sampling step on VIDiff's MODEL (CPU).

    .venv/bin/python bench/ip_adapter_cost.py [--repeats 3]   # about 6 min on 2 cores; needs ../shared/peers

A real ComfyUI 0.3.75 (`--cpu`, torch attention) with this pack and the unmodified IPAdapter_plus, on the test
suite's fixture weights in the released layouts (full-size InstructPix2Pix UNet, AnimateDiff v2, a random
ip-adapter_sd15): Load Checkpoint → VIDiff Apply Motion Module → [IPAdapter Advanced] → VIDiff Sampler on the
10-frame 64×48 example video, 3 guidance branches. Each condition runs at 2 and 6 steps (fresh seeds, so nothing
comes from the cache); seconds per step = the difference of the server's execution times / 4, which leaves out
loading, encoding and decoding. Writes bench/results/ip_adapter_cost.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from comfy_harness import write_model_files  # noqa: E402
from peer_packs import start_peer_server  # noqa: E402
from test_peers import Prompt, _base, _ip_adapter, _motion  # noqa: E402


def prompt(ip_adapter: bool, steps: int, seed: int) -> dict:
    p = Prompt()
    b = _base(p, ip_adapter=ip_adapter)
    model = _motion(p, b["ckpt"])
    if ip_adapter:
        model = _ip_adapter(p, b, model)
    latent = p.add("VIDiffSampler", model=model, instruction=b["text"], source=b["source"], seed=seed, steps=steps,
                   video_cfg=1.5, text_cfg=7.5, sampler_name="euler", scheduler="normal", negative=b["empty"])
    p.add("SaveLatent", samples=latent, filename_prefix="bench/ip_adapter")
    return dict(p)


def execution_seconds(history: dict) -> float:
    times = {m[0]: m[1]["timestamp"] for m in history["status"]["messages"]}
    return (times["execution_success"] - times["execution_start"]) / 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vidiff_bench_ipa_"))
    write_model_files(work / "models")
    server = start_peer_server(work / "server", work / "models", "ipadapter")
    seed, rows = 100, {}
    try:
        for _ in range(2):  # warm-up: models loaded, both graphs once
            for ipa in (False, True):
                seed += 1
                result = server.run(prompt(ipa, 2, seed), timeout=1800)
                assert result["status"] == "success", result.get("error")
        for ipa in (False, True):
            per_step = []
            for _ in range(args.repeats):
                secs = {}
                for steps in (2, 6):
                    seed += 1
                    result = server.run(prompt(ipa, steps, seed), timeout=1800)
                    assert result["status"] == "success", result.get("error")
                    secs[steps] = execution_seconds(result["history"])
                per_step.append((secs[6] - secs[2]) / 4)
            rows["ip_adapter" if ipa else "plain"] = {"s_per_step": per_step,
                                                      "median_s_per_step": sorted(per_step)[len(per_step) // 2]}
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    plain, ipa = rows["plain"]["median_s_per_step"], rows["ip_adapter"]["median_s_per_step"]
    out = {"command": "bench/ip_adapter_cost.py", "machine": f"{platform.machine()}, CPU", "frames": 10,
           "size": "64x48 (latent 8x6)", "branches": 3, **rows, "ip_adapter_extra_s_per_step": ipa - plain,
           "ip_adapter_extra_percent": 100 * (ipa - plain) / plain}
    path = ROOT / "bench" / "results" / "ip_adapter_cost.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
