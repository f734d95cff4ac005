"""The API client (`python -m vidiff_model.remote`) against a real ComfyUI: running the CLI as a user does, and the
load and fault scenarios of issue 14, shared by tests/test_remote.py, tests/test_load.py and bench/load.py.

The cheap job all scenarios run: a workflow that loads a VIDiff file with the host's VAE and CLIP loaders (the
style-image template, text instruction only) pointed at the vidiff-mini files with --set (a user's own video
through the shipped mini model), one step, on small generated videos."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from comfy_harness import ROOT, ComfyServer, write_video

from vidiff_model.remote import ComfyClient
from vidiff_model.remote.workflow import Prompt, apply_assignments, load_workflow, parse_assignment

JOB_SETS = ["VAELoader.vae_name=vidiff_mini_vae.safetensors", "CLIPLoader.clip_name=vidiff_mini_clip_l.safetensors",
            "VIDiffModelLoader.model_name=vidiff_mini.safetensors", "VIDiffSampler.steps=1"]


def _job_workflow() -> Path:
    """workflows/experimental/api/style_image.json (Load VIDiff Model, the host's VAE and CLIP loaders, the user's video) with a
    text instruction only: its style-image nodes dropped. Written once per test process to a temporary file."""
    prompt = json.loads((ROOT / "workflows" / "experimental" / "api" / "style_image.json").read_text())
    encode = next(n for n in prompt.values() if n["class_type"] == "VIDiffInstructionEncode")
    encode["inputs"].pop("image_instruction")
    prompt = {k: n for k, n in prompt.items() if n["class_type"] not in ("LoadImage", "CLIPVisionLoader",
                                                                          "CLIPVisionEncode")}
    path = Path(tempfile.mkdtemp(prefix="vidiff_job_")) / "recolor_job.json"
    path.write_text(json.dumps(prompt, indent=2))
    return path


JOB_WORKFLOW = _job_workflow()
MODEL_FILE = "vidiff_mini.safetensors"  # the file whose opens the load test counts
OPEN_LOG = "safetensors_opens.log"


def cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """`python -m vidiff_model.remote ARGS` from the repository root, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "vidiff_model.remote", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def cli_popen(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vidiff_model.remote", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def job_args(server: ComfyServer, *extra: str) -> list[str]:
    return ["--server", server.url, "--workflow", str(JOB_WORKFLOW), *(a for s in JOB_SETS for a in ("--set", s)),
            "--quiet", *extra]


def job_prompt(*sets: str) -> Prompt:
    """The cheap job as a prompt, with extra NODE.INPUT=VALUE settings."""
    return apply_assignments(load_workflow(JOB_WORKFLOW), [parse_assignment(s) for s in [*JOB_SETS, *sets]])


def write_videos(folder: Path, count: int, frames: int = 4) -> list[Path]:
    """`count` small mp4s with different content (so uploads do not collapse into one file)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        write_video(folder / f"clip_{i:02d}.mp4", frames + i % 3, 64, 48, 8)
        paths.append(folder / f"clip_{i:02d}.mp4")
    return paths


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def vm_rss(pid: int) -> int:
    """Resident set size of a process in bytes (/proc/<pid>/status VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def open_counter_env(folder: Path) -> dict[str, str]:
    """Environment for a server that logs every Python-level open of a .safetensors file (a sys.addaudithook hook
    in a sitecustomize.py, the only file of its PYTHONPATH entry): "pid path" lines in folder/OPEN_LOG.
    VIDiff's loader opens the file in Python (TensorFile reads the header; a converting load, fp16 file to fp32,
    reads each tensor with an open of its own), so every model load leaves lines."""
    hook = folder / "open_counter"
    hook.mkdir(parents=True, exist_ok=True)
    (hook / "sitecustomize.py").write_text(f'''import os, sys
_LOG = {str(folder / OPEN_LOG)!r}
def _hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.fsdecode(args[0])
        if path.endswith(".safetensors"):
            with open(_LOG, "a") as f:
                f.write(f"{{os.getpid()}} {{path}}\\n")
sys.addaudithook(_hook)
''')
    return {"PYTHONPATH": str(hook)}


def model_opens(server: ComfyServer, name: str = MODEL_FILE) -> int:
    """How often the server process (its current pid) opened the model file."""
    log = server.workdir / OPEN_LOG
    if not log.is_file():
        return 0
    pid = str(server.process.pid)
    return sum(1 for line in log.read_text().splitlines() if line.split(" ", 1)[0] == pid and line.endswith(name))


def restart(server: ComfyServer) -> None:
    """Starts the server again on the same folder and port (its previous log kept as comfyui.N.log)."""
    server.log.close()
    n = len(list(server.workdir.glob("comfyui.*.log"))) + 1
    (server.workdir / "comfyui.log").rename(server.workdir / f"comfyui.{n}.log")
    server.start()


@dataclass
class Tracker:
    """Follows many prompts on one websocket: each prompt's end (success, error, interrupted), the server's RSS at
    each success, and the steps seen while each prompt ran."""

    client: ComfyClient
    server: ComfyServer
    ended: dict[str, str] = field(default_factory=dict)  # prompt id -> success | error | interrupted
    ended_at: dict[str, float] = field(default_factory=dict)  # time.monotonic() of the end message
    rss: list[int] = field(default_factory=list)  # at each success, in order
    opens: list[int] = field(default_factory=list)  # model_opens() at each success, in order
    steps: dict[str, int] = field(default_factory=dict)  # vidiff.progress events while each prompt ran
    running: str | None = None

    def follow(self, expected: set[str], timeout: float = 900, on_step=None) -> None:
        """Reads the websocket until every prompt in `expected` has ended."""
        ws = self.ws
        deadline = time.monotonic() + timeout
        while not expected <= set(self.ended):
            if time.monotonic() > deadline:
                raise TimeoutError(f"still running after {timeout} s: {expected - set(self.ended)}")
            raw = ws.recv()
            if not isinstance(raw, str):
                continue
            msg = json.loads(raw)
            kind, data = msg["type"], msg.get("data") or {}
            if kind == "vidiff.progress" and self.running:
                self.steps[self.running] = self.steps.get(self.running, 0) + 1
                if on_step is not None:
                    on_step(self.running, data)
            elif kind == "execution_start":
                self.running = data["prompt_id"]
            elif kind in ("execution_success", "execution_error", "execution_interrupted"):
                self.ended[data["prompt_id"]] = kind.removeprefix("execution_")
                self.ended_at[data["prompt_id"]] = time.monotonic()
                self.running = None
                if kind == "execution_success":
                    self.rss.append(vm_rss(self.server.process.pid))
                    self.opens.append(model_opens(self.server))

    def __enter__(self) -> "Tracker":
        self.ws = self.client.connect()
        self.ws.settimeout(120)
        return self

    def __exit__(self, *exc) -> None:
        self.ws.close()


def queue_jobs(client: ComfyClient, video_name: str, count: int, first_seed: int = 0, steps: int = 1,
               prefix: str = "VIDiff/load") -> list[str]:
    """Queues `count` cheap jobs back to back (seeds differ, so none is answered from the host's cache)."""
    return [client.queue(job_prompt(f"1.file={json.dumps(video_name)}", f"VIDiffSampler.seed={first_seed + i}",
                                    f"VIDiffSampler.steps={steps}", f"SaveVideo.filename_prefix={prefix}"))
            for i in range(count)]
