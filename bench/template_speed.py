"""Benchmark: a vidiff-mini template from Run to its saved file, as a user meets it, idle and under load.

    .venv/bin/python bench/template_speed.py [--template mini_dehaze] [--repeats 2]   # about 5 min on 2 cores

Starts a fresh ComfyUI 0.3.75 (`--cpu`, the pack; the test harness's server, as scripts/run.sh starts it) per
condition and runs the template as shipped through `python -m vidiff_model.remote run` (a client process) `repeats`
times: the first run is the server's first prompt (it loads the models), the later ones find them loaded (each
with its own seed: an unchanged prompt would come from ComfyUI's cache, 0.1 s, and measure nothing). For
each run: the client's wall time, the server's own execution time (the history's execution_start →
execution_success timestamps), and the machine's load average. Conditions:
  idle           nothing else running;
  load           `--hogs` background processes, each a torch matrix-multiply loop with torch's default thread
                 count (as a test suite or a second ComfyUI would be);
  load_1thread   the same hogs, each limited to one thread (OMP_NUM_THREADS=1).
Writes bench/results/template_speed.json.
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
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

HOG = "import torch\na = torch.randn(1024, 1024)\nwhile True:\n    a = (a @ a).tanh()\n"


def server_seconds(server, prompt_id: str) -> float | None:
    """execution_start → execution_success of one prompt, from the server's history (ms timestamps)."""
    entry = server.get(f"/history/{prompt_id}").get(prompt_id, {})
    stamps = {kind: data.get("timestamp") for kind, data in entry.get("status", {}).get("messages", [])}
    if stamps.get("execution_start") and stamps.get("execution_success"):
        return (stamps["execution_success"] - stamps["execution_start"]) / 1000
    return None


def run_condition(name: str, template: str, repeats: int, hogs: int, hog_env: dict[str, str]) -> list[dict]:
    from comfy_harness import ComfyServer

    work = Path(tempfile.mkdtemp(prefix=f"vidiff_speed_{name}_"))
    procs = [subprocess.Popen([sys.executable, "-c", HOG], env={**os.environ, **hog_env},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(hogs)]
    server = None
    runs = []
    try:
        start = time.monotonic()
        server = ComfyServer(work / "server").start(timeout=600)
        started = time.monotonic() - start
        for i in range(repeats):
            before = set(server.get("/history"))
            t0 = time.monotonic()
            out = subprocess.run([sys.executable, "-m", "vidiff_model.remote", "run", "--server", server.url,
                                  "--workflow", template, "--out", str(work / f"out{i}"), "--quiet",
                                  "--set", f"VIDiffSampler.seed={i}"],  # the same prompt again is ComfyUI's cache
                                 cwd=ROOT, capture_output=True, text=True, timeout=3600)
            wall = time.monotonic() - t0
            if out.returncode != 0:
                raise SystemExit(f"{name}: run {i} failed: {out.stderr[-2000:]}")
            prompt_id = next(iter(set(server.get("/history")) - before))
            runs.append({"condition": name, "run": i + 1, "first_prompt": i == 0, "client_s": round(wall, 1),
                         "server_s": round(server_seconds(server, prompt_id) or float("nan"), 1),
                         "server_start_s": round(started, 1) if i == 0 else None,
                         "load_average_1min": round(os.getloadavg()[0], 2)})
            print(json.dumps(runs[-1]), flush=True)
    finally:
        if server:
            server.stop()
        for p in procs:
            p.kill()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default="mini_dehaze")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--hogs", type=int, default=1, help="background torch processes under load")
    parser.add_argument("--conditions", nargs="*", default=["idle", "load", "load_1thread"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "template_speed.json")
    args = parser.parse_args()
    settings = {"idle": (0, {}), "load": (args.hogs, {}), "load_1thread": (args.hogs, {"OMP_NUM_THREADS": "1"})}
    runs = [r for c in args.conditions for r in run_condition(c, args.template, args.repeats, *settings[c])]
    report = {"command": "bench/template_speed.py " + " ".join(sys.argv[1:]), "template": args.template,
              "cpus": os.cpu_count(), "hogs": args.hogs, "runs": runs}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
