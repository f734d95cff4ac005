"""Benchmark: a real ComfyUI under load and faults, driven through the API client (issue 14).

    .venv/bin/python bench/load.py [--prompts 50]      # a few minutes on 2 CPU cores

Starts its own ComfyUI 0.3.75 server (scripts/provision_comfyui.sh; `--cpu`) with the pack, and runs the
scenarios of tests/load_scenarios.py on the shipped vidiff-mini model (tests/remote_harness.py's job workflow,
pointed at the mini files with --set, 1 step, 64x48 videos of 4-6 frames):
  back to back   N prompts queued in one burst: successes, seconds per prompt, server RSS (VmRSS) after the
                 5th and the last, during how many prompts the model file was opened (Python audit hook);
  two clients    two client processes at once, each checked to get its own result;
  cancel/delete  4 prompts; the 1st (200 steps) interrupted at step 2, the 3rd deleted from the queue;
  kill/restart   a batch of 4 videos, the server SIGKILLed after the 1st finished, restarted, batch rerun.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=50)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from load_scenarios import back_to_back, cancel_and_delete, kill_during_batch, start_load_server, two_clients

    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="vidiff_load_") as tmp:
        work = Path(tmp)
        start = time.monotonic()
        server = start_load_server(work / "server")
        rows.append(("server start", f"{time.monotonic() - start:.1f} s", "ComfyUI --cpu, the pack loaded"))
        try:
            f = back_to_back(server, work / "burst", args.prompts)
            rows += [
                (f"{args.prompts} prompts back to back", f"{f['succeeded']}/{f['prompts']} succeeded",
                 f"{f['seconds']:.0f} s, {f['per_prompt_s']:.2f} s per prompt, {f['distinct_outputs']} distinct files"),
                ("server RSS after 5th / last", f"{f['rss_after_5_mib']:.0f} / {f['rss_after_last_mib']:.0f} MiB",
                 f"{100 * f['rss_growth']:+.3f} % (min {f['rss_min_mib']:.0f}, max {f['rss_max_mib']:.0f} MiB)"),
                ("model file read", f"during {f['prompts_reading_model']} prompt(s)",
                 f"prompt {f['first_prompt_reading_model']}; {f['model_opens_total']} opens "
                 "(one load: header + one per tensor, fp16 -> fp32)"),
            ]
            f = two_clients(server, work / "two")
            rows.append(("two clients at once", f"return codes {f['return_codes']}",
                         f"own results {f['own_results']}, {f['seconds']:.1f} s"))
            f = cancel_and_delete(server, work / "cancel")
            rows.append(("cancel 1st, delete 3rd of 4", " / ".join(f["statuses"]),
                         f"interrupted at step {f['interrupted_at_step']}, {f['steps_after_interrupt']} step(s) after, "
                         f"stopped {f['interrupt_to_stop_s']:.2f} s after the request"))
            f = kill_during_batch(server, work / "kill", 4)
            statuses = list(f["rerun_statuses"].values())
            rows += [
                ("kill -9 during a batch of 4", f"{f['done_before_kill']} finished before",
                 f"client exit {f['client_rc_after_kill']} after {f['client_exit_s']:.2f} s: {f['client_error']}"),
                ("restart + rerun", f"{statuses.count('skipped')} skipped, {statuses.count('done')} done",
                 f"restart {f['restart_s']:.1f} s, rerun exit {f['rerun_rc']}, finished files kept unchanged: "
                 f"{f['kept_unchanged']}, {f['outputs_present']}/4 outputs"),
            ]
        finally:
            server.stop()
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    for r in rows:
        print(f"{r[0]:{width[0]}s}  {r[1]:{width[1]}s}  {r[2]}")


if __name__ == "__main__":
    main()
