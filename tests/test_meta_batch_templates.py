"""The pack beside the unmodified ComfyUI-VideoHelperSuite (tests/peer_packs.py) in a real ComfyUI: both load cleanly,
VideoHelperSuite's own Meta Batch (Meta Batch Manager → Load Video → Video Combine, re-queued server-side until the
video ends) gives one file with every frame, and the batched long-video templates (vidiff_mini_long_video_batched,
vidiff_long_video_batched) run through the HTTP API. Skipped where ../shared/peers is absent."""

from __future__ import annotations

import copy
import math
import subprocess
import sys
from pathlib import Path

import pytest
from comfy_harness import ComfyServer, video_info, write_video
from peer_packs import require_peers, run_until_idle, start_vhs_server

pytestmark = pytest.mark.comfyui
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def vhs_server(tmp_path_factory):
    """ComfyUI with this pack and VideoHelperSuite only; vidiff-mini's files come with the pack."""
    require_peers("videohelpersuite")
    server = start_vhs_server(tmp_path_factory.mktemp("vhs"))
    yield server
    server.stop()


def run_batches(server: ComfyServer, prompt: dict, timeout: float = 900) -> list[dict]:
    """Queues `prompt`, waits for every re-queued batch; the history entries of this run (oldest first), none
    with an error."""
    entries = run_until_idle(server, prompt, timeout)
    for entry in entries:
        messages = dict(entry["status"].get("messages", []))
        assert "execution_error" not in messages, (messages["execution_error"], server.log_text()[-3000:])
        assert entry["status"]["status_str"] == "success", entry["status"]
    return entries


def output_files(server: ComfyServer, prefix: str, suffix: str = ".mp4") -> list[Path]:
    return sorted(p for p in (server.workdir / "output").rglob(f"*{suffix}") if p.name.startswith(Path(prefix).name))


def combine(images: list, prefix: str, frame_rate, *, audio: list | None = None,
            meta_batch: list | None = None) -> dict:
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


# -- the batched long-video templates ---------------------------------------------------------------------------------
MINI_TEMPLATE, FULL_TEMPLATE = "mini_long_video_batched", "long_video_batched"


def template_prompt(name: str, prefix: str, *, video: str | None = None, steps: int = 2,
                    frames_per_batch: int | None = None, long_video: dict | None = None) -> dict:
    """The template's API form with fewer steps, its own file name prefix, and optionally another video, batch size
    or long-video setting."""
    from comfy_harness import API_ALL

    prompt = copy.deepcopy(API_ALL[name])
    for node in prompt.values():
        inputs = node["inputs"]
        if node["class_type"] == "VIDiffSampler":
            inputs["steps"] = steps
        elif node["class_type"] == "VHS_LoadVideo" and video:
            inputs["video"] = video
        elif node["class_type"] == "VHS_BatchManager" and frames_per_batch:
            inputs["frames_per_batch"] = frames_per_batch
        elif node["class_type"] == "VIDiffLongVideo" and long_video:
            inputs.update(long_video)
        elif node["class_type"] == "VHS_VideoCombine":
            inputs["filename_prefix"] = prefix
    return prompt


def combined_file(server: ComfyServer, entries: list[dict]) -> Path:
    """The file Video Combine lists after the last batch (the one with the audio where the source has some)."""
    items = [item for entry in entries for output in entry.get("outputs", {}).values()
             for item in output.get("gifs", [])]
    assert items, entries
    item = items[-1]
    return server.workdir / "output" / item["subfolder"] / item["filename"]


def streams(path: Path) -> dict:
    import av

    with av.open(str(path)) as c:
        return {"video": [s.codec_context.name for s in c.streams.video],
                "audio": [s.codec_context.name for s in c.streams.audio],
                "audio_seconds": float(c.streams.audio[0].duration * c.streams.audio[0].time_base)
                if c.streams.audio and c.streams.audio[0].duration else 0.0}


def test_the_pack_puts_the_templates_sample_video_into_the_input_folder(vhs_server):
    """vidiff_mini_long_video_batched runs as it ships: Load Video lists the sample clip, hazed, as an mp4."""
    from vidiff_model.mini.samples import HAZY_SAMPLE_VIDEO

    from comfy_harness import API_ALL

    path = vhs_server.workdir / "input" / HAZY_SAMPLE_VIDEO
    assert path.is_file() and "wrote the sample clip" in vhs_server.log_text()
    assert video_info(path) == (45, 128, 128, 8.0)
    options = vhs_server.get("/object_info/VHS_LoadVideo")["VHS_LoadVideo"]["input"]["required"]["video"][0]
    assert HAZY_SAMPLE_VIDEO in options
    loads = [n for n in API_ALL[MINI_TEMPLATE].values() if n["class_type"] == "VHS_LoadVideo"]
    assert [n["inputs"]["video"] for n in loads] == [HAZY_SAMPLE_VIDEO]


def test_the_mini_batched_template_runs_as_it_ships(vhs_server):
    """On the sample clip (45 frames, 40 per batch as shipped: 2 executions), 2 steps: one mp4 with every frame at 8 fps."""
    entries = run_batches(vhs_server, template_prompt(MINI_TEMPLATE, "shipped"), timeout=900)
    assert len(entries) == 2
    path = combined_file(vhs_server, entries)
    assert video_info(path) == (45, 128, 128, 8.0)
    assert streams(path)["video"] == ["h264"] and not streams(path)["audio"]  # the sample clip has no sound
    assert len(output_files(vhs_server, "shipped")) == 1


def write_clip_with_audio(path: Path, frames: int, side: int, fps: int) -> None:
    """A moving test pattern with a 440 Hz tone, h264 + AAC, by imageio-ffmpeg's ffmpeg."""
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size={side}x{side}:rate={fps}",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
                    "-frames:v", str(frames), "-t", f"{frames / fps:.4f}", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", str(path)], check=True, capture_output=True)


def test_the_mini_batched_template_keeps_every_frame_the_frame_rate_and_the_sound(vhs_server):
    """A 40-frame 128² clip at 12 fps with sound, 16 frames per batch (3 executions): one h264 mp4 with all 40
    frames at 12 fps and the source's audio (Video Combine also keeps its silent intermediate, VideoHelperSuite's
    default)."""
    clip = "meta_audio_clip.mp4"
    write_clip_with_audio(vhs_server.workdir / "input" / clip, 40, 128, 12)
    source = streams(vhs_server.workdir / "input" / clip)
    assert video_info(vhs_server.workdir / "input" / clip) == (40, 128, 128, 12.0) and source["audio"] == ["aac"]
    entries = run_batches(vhs_server, template_prompt(MINI_TEMPLATE, "with_audio", video=clip, frames_per_batch=16),
                          timeout=900)
    assert len(entries) == 3
    path = combined_file(vhs_server, entries)
    assert path.name.endswith("-audio.mp4"), path
    assert video_info(path) == (40, 128, 128, 12.0)
    got = streams(path)
    assert got["video"] == ["h264"] and got["audio"] == ["aac"], got
    assert got["audio_seconds"] == pytest.approx(40 / 12, abs=0.2), got


# -- on the peer server (IPAdapter_plus, AnimateDiff-Evolved, VideoHelperSuite; the full-size fixture weights) ---------
BATCHED_UI = ["vidiff_" + MINI_TEMPLATE, "vidiff_" + FULL_TEMPLATE]


@pytest.mark.slow
def test_the_full_size_batched_template_runs(peer_server):
    """The full-size twin (fixture weights) on the example video (10 frames, 4 per batch: 3 executions; clips of 4
    sharing 1, overlap-guided), 1 step: one mp4 with every frame at the source's frame rate."""
    from comfy_harness import FPS, FRAMES, HEIGHT, WIDTH

    prompt = template_prompt(FULL_TEMPLATE, "full_batched", steps=1, frames_per_batch=4,
                             long_video={"clip_length": 4, "overlap": 1})
    entries = run_batches(peer_server, prompt, timeout=1800)
    assert len(entries) == math.ceil(FRAMES / 4)
    assert video_info(combined_file(peer_server, entries)) == (FRAMES, WIDTH, HEIGHT, float(FPS))


@pytest.mark.parametrize("name", BATCHED_UI)
def test_the_batched_templates_match_the_servers_nodes(peer_server, name):
    from test_comfyui import check_ui_workflow_matches_object_info

    check_ui_workflow_matches_object_info(peer_server, name)


@pytest.fixture(scope="module")
def peer_page(peer_server):
    from test_browser import browser_page

    yield from browser_page(peer_server)


@pytest.mark.parametrize("name", BATCHED_UI)
def test_the_batched_templates_convert_to_an_accepted_prompt(peer_server, peer_page, name):
    from test_browser import check_workflow_converts_to_an_accepted_prompt

    check_workflow_converts_to_an_accepted_prompt(peer_server, peer_page, name)


@pytest.mark.parametrize("name", BATCHED_UI)
def test_the_batched_templates_open_whole_and_tidy_with_their_note(peer_page, name):
    from test_templates_browser import check_template_opens_whole_and_tidy

    from vidiff_model.remote.templates import VHS_URL, template

    check_template_opens_whole_and_tidy(peer_page, name)
    note = peer_page.evaluate("() => app.graph._nodes.filter((n) => n.type === 'Note').map((n) => n.widgets[0].value)")
    assert len(note) == 1 and "ComfyUI-VideoHelperSuite" in note[0] and VHS_URL in note[0], note
    assert "frames_per_batch at a time" in note[0] and "bounded memory" in note[0]
    assert "VideoHelperSuite" in template(name).needs and VHS_URL in template(name).needs


def test_the_client_follows_every_meta_batch(vhs_server, tmp_path):
    """`python -m vidiff_model.remote run` on the mini batched template: the client follows the batches
    VideoHelperSuite queues after its prompt and downloads the whole video (45 frames), exit 0."""
    out = subprocess.run([sys.executable, "-m", "vidiff_model.remote", "run", "--server", vhs_server.url,
                          "--workflow", MINI_TEMPLATE, "--set", "VIDiffSampler.steps=2",
                          "--set", "VHS_BatchManager.frames_per_batch=28", "--out", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stderr.count("meta batch") == 1, out.stderr  # 28 + 17 frames: one batch followed by another
    mp4s = [Path(line) for line in out.stdout.splitlines() if line.endswith(".mp4")]
    assert mp4s and video_info(mp4s[-1])[0] == 45, out.stdout
