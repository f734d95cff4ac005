"""Benchmark: memory and time of a long video through VideoHelperSuite's Meta Batch Manager, by video length.

    .venv/bin/python bench/meta_batch_memory.py [--frames 96 480 1920] [--batch 48] [--steps 4]

For each length, a fresh ComfyUI 0.3.75 (`--cpu`, this pack and the unmodified VideoHelperSuite from
../shared/peers) runs the template `mini_long_video_batched` (vidiff-mini, workflows/api/) on a generated 128×128
clip of that many frames, `--batch` frames per meta batch, until VideoHelperSuite's re-queued batches are done.
Records the server process's peak resident memory (the kernel's VmHWM: startup, model loading and every batch),
and the seconds per frame (the batches' execution_start → execution_success, from the server's history: over all
batches, and steady, over the full batches after the first, which also loads the models), and
checks the output mp4 holds every frame. The machine's load average is recorded with each row: seconds per frame
mean something only on a machine with nothing else running. Writes bench/results/meta_batch_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

TEMPLATE = ROOT / "workflows" / "api" / "mini_long_video_batched.json"


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc: Linux only")


def prompt_for(template: Path, clip: str, batch: int, steps: int) -> dict:
    prompt = json.loads(template.read_text())
    for node in prompt.values():
        inputs = node["inputs"]
        if node["class_type"] == "VHS_BatchManager":
            inputs["frames_per_batch"] = batch
        elif node["class_type"].startswith("VHS_LoadVideo"):
            inputs["video"] = clip
        elif node["class_type"] == "VIDiffSampler":
            inputs["steps"] = steps
    return prompt


def run_length(template: Path, frames: int, batch: int, steps: int) -> dict:
    from comfy_harness import ComfyServer, video_info, write_video
    from peer_packs import custom_nodes_with

    work = Path(tempfile.mkdtemp(prefix=f"vidiff_meta_{frames}_"))
    (work / "models").mkdir()
    server = ComfyServer(work, custom_nodes=custom_nodes_with(work, "videohelpersuite")).start(timeout=600)
    try:
        clip = f"long_{frames}.mp4"
        write_video(work / "input" / clip, frames, 128, 128, fps=24)
        code, body = server.post("/prompt", {"prompt": prompt_for(template, clip, batch, steps)})
        assert code == 200, body
        t0 = time.monotonic()
        while True:
            queue = server.get("/queue")
            if not queue["queue_running"] and not queue["queue_pending"]:
                break
            time.sleep(1.0)
        wall = time.monotonic() - t0
        history = server.get("/history")
        spans, errors = [], []
        for entry in history.values():
            stamps = {kind: data for kind, data in entry["status"].get("messages", [])}
            if "execution_error" in stamps:
                errors.append(stamps["execution_error"]["exception_message"])
            if "execution_start" in stamps and "execution_success" in stamps:
                spans.append((stamps["execution_start"]["timestamp"], stamps["execution_success"]["timestamp"]))
        spans.sort()
        seconds = [(end - begin) / 1000 for begin, end in spans]
        busy = sum(seconds)
        # steady state: the full batches after the first (the first also loads the models)
        steady = seconds[1:-1] if frames % batch else seconds[1:]
        if errors:
            raise RuntimeError(errors[0])
        videos = sorted((work / "output").rglob("*.mp4"))
        out_frames = video_info(videos[-1])[0] if videos else 0
        return {"frames": frames, "frames_per_batch": batch, "steps": steps, "batches": len(history),
                "peak_rss_mib": round(peak_rss_mib(server.process.pid), 1), "wall_s": round(wall, 1),
                "s_per_frame": round(busy / frames, 4),
                "s_per_frame_steady": round(sum(steady) / (len(steady) * batch), 4) if steady else None,
                "first_batch_s": round(seconds[0], 1), "output_frames": out_frames,
                "batch_s": [round(x, 2) for x in seconds],
                "load_average_1min_at_end": round(os.getloadavg()[0], 2)}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[96, 480, 1920])
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--template", default=str(TEMPLATE), help="an API workflow with VHS_BatchManager")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "meta_batch_memory.json"))
    args = parser.parse_args()
    rows = []
    for frames in args.frames:
        rows.append(run_length(Path(args.template), frames, args.batch, args.steps))
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]
    for row in rows:
        row["rss_vs_shortest"] = round(row["peak_rss_mib"] / base["peak_rss_mib"], 3)
        if row["s_per_frame_steady"] and base["s_per_frame_steady"]:
            row["steady_time_per_frame_vs_shortest"] = round(row["s_per_frame_steady"] / base["s_per_frame_steady"], 3)
    out = Path(args.out)
    out.write_text(json.dumps({"command": "python bench/meta_batch_memory.py " + " ".join(sys.argv[1:]),
                               "machine": "see docs/benchmarks.md", "rows": rows}, indent=2) + "\n")
    print(f"{'frames':>7} {'batches':>7} {'peak RSS MiB':>12} {'× shortest':>10} {'s/frame':>8} {'steady':>8} "
          f"{'out frames':>10}")
    for r in rows:
        print(f"{r['frames']:>7} {r['batches']:>7} {r['peak_rss_mib']:>12} {r['rss_vs_shortest']:>10} "
              f"{r['s_per_frame']:>8} {r['s_per_frame_steady']!s:>8} {r['output_frames']:>10}")


if __name__ == "__main__":
    main()
