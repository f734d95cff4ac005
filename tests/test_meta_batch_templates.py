"""The pack beside the unmodified ComfyUI-VideoHelperSuite (tests/peer_packs.py) in a real ComfyUI: both load cleanly,
VideoHelperSuite's own Meta Batch (Meta Batch Manager → Load Video → Video Combine, re-queued server-side until the
video ends) gives one file with every frame, and the batched long-video templates (vidiff_mini_long_video_batched,
vidiff_long_video_batched) run through the HTTP API. Skipped where ../shared/peers is absent."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from comfy_harness import ComfyServer, video_info, write_video
from peer_packs import custom_nodes_with, require_peers

pytestmark = pytest.mark.comfyui
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def vhs_server(tmp_path_factory):
    """ComfyUI with this pack and VideoHelperSuite only; vidiff-mini's files come with the pack."""
    require_peers("videohelpersuite")
    work = tmp_path_factory.mktemp("vhs")
    (work / "models").mkdir()
    server = ComfyServer(work, custom_nodes=custom_nodes_with(work, "videohelpersuite")).start()
    yield server
    server.stop()


def wait_for_queue(server: ComfyServer, timeout: float = 900) -> None:
    """Until the queue is empty: VideoHelperSuite re-queues the prompt server-side once per batch."""
    deadline = time.time() + timeout
    time.sleep(0.5)
    while time.time() < deadline:
        queue = server.get("/queue")
        if not queue["queue_running"] and not queue["queue_pending"]:
            return
        time.sleep(0.5)
    raise TimeoutError(f"the queue was not empty after {timeout} s")


def run_batches(server: ComfyServer, prompt: dict, timeout: float = 900) -> list[dict]:
    """Queues `prompt`, waits for every re-queued batch; the history entries of this run (oldest first), none
    with an error."""
    before = set(server.get("/history"))
    code, body = server.post("/prompt", {"prompt": prompt})
    assert code == 200, body
    wait_for_queue(server, timeout)
    history = server.get("/history")
    entries = [history[k] for k in history if k not in before]
    for entry in entries:
        messages = dict(entry["status"].get("messages", []))
        assert "execution_error" not in messages, (messages["execution_error"], server.log_text()[-3000:])
        assert entry["status"]["status_str"] == "success", entry["status"]
    return entries


def output_files(server: ComfyServer, prefix: str, suffix: str = ".mp4") -> list[Path]:
    return sorted(p for p in (server.workdir / "output").rglob(f"*{suffix}") if p.name.startswith(Path(prefix).name))


def combine(images: list, prefix: str, frame_rate, *, audio: list | None = None, meta_batch: list | None = None) -> dict:
    """VHS_VideoCombine's inputs for an h264 mp4 (its format widgets at their defaults)."""
    inputs = {"images": images, "frame_rate": frame_rate, "loop_count": 0, "filename_prefix": prefix,
              "format": "video/h264-mp4", "pingpong": False, "save_output": True, "pix_fmt": "yuv420p", "crf": 19,
              "save_metadata": True, "trim_to_audio": False}
    if audio is not None:
        inputs["audio"] = audio
    if meta_batch is not None:
        inputs["meta_batch"] = meta_batch
    return {"class_type": "VHS_VideoCombine", "inputs": inputs}


def load_video(video: str, meta_batch: list | None = None, **settings) -> dict:
    inputs = {"video": video, "force_rate": 0, "custom_width": 0, "custom_height": 0, "frame_load_cap": 0,
              "skip_first_frames": 0, "select_every_nth": 1, **settings}
    if meta_batch is not None:
        inputs["meta_batch"] = meta_batch
    return {"class_type": "VHS_LoadVideo", "inputs": inputs}


def test_vhs_loads_beside_vidiff_with_no_error_in_the_log(vhs_server):
    log = vhs_server.log_text()
    startup = log.split("Starting server", 1)[0]
    for marker in ("Traceback", "IMPORT FAILED", "Cannot import", "Failed to import imageio_ffmpeg",
                   "No valid ffmpeg"):
        assert marker not in startup, f"{marker!r} in the startup log:\n{startup[-6000:]}"
    info = vhs_server.get("/object_info")
    for node in ("VIDiffSampler", "VIDiffLongVideo", "VHS_BatchManager", "VHS_LoadVideo", "VHS_VideoCombine",
                 "VHS_VideoInfo"):
        assert node in info, node
    assert "video/h264-mp4" in info["VHS_VideoCombine"]["input"]["required"]["format"][0]


def test_plain_meta_batch_gives_one_file_with_every_frame(vhs_server):
    """VideoHelperSuite alone: 20 frames, 8 per batch → 3 executions (the server re-queues), one mp4 of 20 frames."""
    frames, per_batch = 20, 8
    write_video(vhs_server.workdir / "input" / "vhs_plain.mp4", frames, 64, 48, fps=8)
    prompt = {"1": {"class_type": "VHS_BatchManager", "inputs": {"frames_per_batch": per_batch}},
              "2": load_video("vhs_plain.mp4", meta_batch=["1", 0]),
              "3": combine(["2", 0], "vhs_plain", 8, meta_batch=["1", 0])}
    entries = run_batches(vhs_server, prompt, timeout=300)
    assert len(entries) == math.ceil(frames / per_batch)
    files = output_files(vhs_server, "vhs_plain")
    assert len(files) == 1, files
    assert video_info(files[0])[:3] == (frames, 64, 48)
