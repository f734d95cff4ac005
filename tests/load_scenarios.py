"""Issue 14's load and fault scenarios against a real ComfyUI, each returning its measured figures: run by
tests/test_load.py (which asserts on them) and bench/load.py (which prints them as a table)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from comfy_harness import ComfyServer, video_info
from remote_harness import (Tracker, cli, cli_popen, job_args, model_opens, open_counter_env, queue_jobs, restart,
                            sha, write_videos)

from vidiff_model.remote import ComfyClient


def start_load_server(work: Path) -> ComfyServer:
    """A bare server (the pack's vidiff-mini files only) that logs its opens of .safetensors files."""
    work.mkdir(parents=True, exist_ok=True)
    return ComfyServer(work, env=open_counter_env(work)).start()


def back_to_back(server: ComfyServer, tmp: Path, count: int = 50) -> dict:
    """`count` prompts queued in one burst: how many succeed, the server's RSS after the 5th and the last, during
    how many prompts the model file was opened (1 on a fresh server: the loader's result is reused), and whether
    every prompt saved its own file."""
    client = ComfyClient(server.url)
    name = client.upload(write_videos(tmp / "videos", 1)[0])
    opens_before = model_opens(server)
    start = time.monotonic()
    with Tracker(client, server) as tracker:
        ids = queue_jobs(client, name, count, first_seed=1000)
        tracker.follow(set(ids), timeout=60 * count)
    seconds = time.monotonic() - start
    files = {item["filename"] for i in ids for out in (client.history(i) or {}).get("outputs", {}).values()
             for item in out.get("images", [])}
    rss = tracker.rss
    opened = [b > a for a, b in zip([opens_before, *tracker.opens], tracker.opens)]  # per prompt: file opened?
    return {"prompts": count, "succeeded": [tracker.ended[i] for i in ids].count("success"),
            "seconds": seconds, "per_prompt_s": seconds / count, "distinct_outputs": len(files),
            "rss_after_5_mib": rss[4] / 2**20, "rss_after_last_mib": rss[-1] / 2**20,
            "rss_growth": rss[-1] / rss[4] - 1, "rss_min_mib": min(rss) / 2**20, "rss_max_mib": max(rss) / 2**20,
            "prompts_reading_model": sum(opened),
            "first_prompt_reading_model": opened.index(True) + 1 if any(opened) else 0,
            "model_opens_total": model_opens(server)}


def two_clients(server: ComfyServer, tmp: Path) -> dict:
    """Two client processes queueing at the same time, on videos of different lengths: each must get back its own
    result (its prefix, its video's frame count)."""
    videos = write_videos(tmp / "videos", 2)  # 4 and 5 frames
    start = time.monotonic()
    procs = [cli_popen("run", *job_args(server, "--video", str(v), "--out", str(tmp / f"out_{i}"),
                                        "--set", f"SaveVideo.filename_prefix=VIDiff/client_{i}",
                                        "--set", f"VIDiffSampler.seed={500 + i}"))
             for i, v in enumerate(videos)]
    results = [p.communicate(timeout=900) + (p.returncode,) for p in procs]
    seconds = time.monotonic() - start
    own = []
    for i, (stdout, stderr, rc) in enumerate(results):
        files = [Path(line) for line in stdout.splitlines() if line.startswith(str(tmp))]
        own.append(rc == 0 and len(files) == 1 and files[0].name.startswith(f"client_{i}_")
                   and video_info(files[0])[0] == video_info(videos[i])[0])
    return {"clients": 2, "return_codes": [r[2] for r in results], "own_results": own, "seconds": seconds,
            "errors": [r[1].strip()[-300:] for r in results if r[2] != 0]}


def cancel_and_delete(server: ComfyServer, tmp: Path) -> dict:
    """Four prompts queued; while the first (200 steps) runs, the third is deleted from the queue and the first
    interrupted: the first ends interrupted, the third never runs, the second and fourth succeed."""
    client = ComfyClient(server.url)
    name = client.upload(write_videos(tmp / "videos", 1)[0])
    moments: dict[str, float] = {}
    with Tracker(client, server) as tracker:
        long_id = queue_jobs(client, name, 1, first_seed=900, steps=200)[0]
        second, third, fourth = queue_jobs(client, name, 3, first_seed=901)

        def on_step(prompt_id: str, data: dict) -> None:
            if prompt_id == long_id and "interrupt" not in moments and data["step"] >= 2:
                client.post_json("/queue", {"delete": [third]})
                moments["interrupt"] = time.monotonic()
                moments["step"] = data["step"]
                client.post_json("/interrupt", {"prompt_id": long_id})

        tracker.follow({long_id, second, fourth}, timeout=900, on_step=on_step)
    history = {i: client.history(i) is not None for i in (long_id, second, third, fourth)}
    return {"statuses": [tracker.ended.get(i, "never ran") for i in (long_id, second, third, fourth)],
            "in_history": list(history.values()), "third_queued": client.in_queue(third),
            "steps_after_interrupt": tracker.steps.get(long_id, 0) - moments.get("step", 0),
            "interrupted_at_step": moments.get("step"),
            "interrupt_to_stop_s": tracker.ended_at[long_id] - moments.get("interrupt", 0)}


def kill_during_batch(server: ComfyServer, tmp: Path, count: int = 4) -> dict:
    """A batch of `count` videos; the server killed (SIGKILL) once the first video is done; restarted; the batch
    rerun: the finished video kept (not run again, file untouched), the rest completed."""
    videos_dir, out_dir = tmp / "videos", tmp / "out"
    write_videos(videos_dir, count)
    args = ["batch", *job_args(server, "--videos", str(videos_dir), "--out", str(out_dir))]
    manifest = out_dir / "vidiff_batch.jsonl"
    proc = cli_popen(*args)
    deadline = time.monotonic() + 600
    while not (manifest.is_file() and '"done"' in manifest.read_text()):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    server.process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    stdout, stderr = proc.communicate(timeout=300)
    client_s = time.monotonic() - killed_at
    finished = [json.loads(line) for line in manifest.read_text().splitlines()]
    kept = {f: sha(out_dir / f) for m in finished for f in m["outputs"]}
    start = time.monotonic()
    server.process.wait(30)
    restart(server)
    restart_s = time.monotonic() - start
    rerun = cli(*args)
    rows = [line.split() for line in rerun.stdout.splitlines()[1:-1]]
    return {"videos": count, "done_before_kill": len(finished), "client_rc_after_kill": proc.returncode,
            "client_error": stderr.strip().splitlines()[-1] if stderr.strip() else "", "client_exit_s": client_s,
            "restart_s": restart_s, "rerun_rc": rerun.returncode, "rerun_stderr": rerun.stderr[-1000:],
            "rerun_statuses": {r[0]: r[1] for r in rows},
            "kept_unchanged": all((out_dir / f).is_file() and sha(out_dir / f) == h for f, h in kept.items()),
            "outputs_present": sum(len(r) > 3 and (out_dir / r[3]).is_file() for r in rows)}
