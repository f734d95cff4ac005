"""Runs a host-check script of tests/ (host_checks.py, host_memory_checks.py) in a process of its own inside the
real ComfyUI tree, as ComfyUI imports the pack (the pack's `nodes/` must not shadow ComfyUI's), and returns the
figures it printed as its last line of JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def run_host_script(script: str, work: Path, only: tuple[str, str] | None = None, timeout: int = 1800) -> dict:
    """Args: script: a file in tests/; work: its fixture folder; only: (environment variable, checks) to run a
    subset, e.g. ("HOST_MEMORY_CHECKS", "meta,sizes"). A check that crashed fails here, with its traceback."""
    from comfy_harness import comfyui_path

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if only is not None:
        env[only[0]] = only[1]
    out = subprocess.run([sys.executable, str(TESTS / script), str(work)], cwd=comfyui_path(), env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(out.stdout.strip().splitlines()[-1])
    for name, result in results.items():
        assert "crashed" not in result, f"{name}:\n{result['crashed']}"
    return results
