"""A long video from the client, segment by segment (issue 30, item 4): `python -m vidiff_model.remote run --video`
on the vidiff-mini long-video template, against a real ComfyUI of its own (one test restarts it). The plan, the
prompt of a segment and the manifest offline; then on the server: parts cut anywhere on clip ends give the same
frames, a `kill -9` of the client and a restart of the server both resume from the last finished segment to the
same video, and bad input is one line naming it."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from comfy_harness import ROOT, comfyui_path, video_info, write_video
from remote_harness import cli, cli_popen, restart

from vidiff_model.remote.segments import (FramesProgress, LongVideoSetup, SegmentLog, find_long_video,
                                          plan_segments, segment_prompt)
from vidiff_model.remote.own_footage import use_own_video
from vidiff_model.remote.workflow import load_workflow, resolve_workflow

FRAMES = 40  # the test video: 40 frames, 96×64 at 8 fps; the model gets 64×64
# Fast settings: 2 steps, clips of 8 sharing 2 (one run's clips end at 8, 14, 20, ..., 38, 40).
SETS = ["VIDiffSampler.steps=2", "VIDiffLongVideo.clip_length=8", "VIDiffLongVideo.overlap=2",
        "Resize for vidiff-mini.width=64", "Resize for vidiff-mini.height=64"]


def _own_prompt() -> dict:
    return use_own_video(load_workflow(resolve_workflow("mini_long_video")), "mini_long_video", "long.mp4")


def _specs(class_type: str) -> dict:
    image = {"images": ["IMAGE"], "image": ["IMAGE"], "result": ["IMAGE"], "source": ["IMAGE"]}
    return {"SaveAnimatedWEBP": image, "VIDiffKeepLuminance": image, "SaveVideo": {"video": ["VIDEO"]},
            "CreateVideo": image}.get(class_type, {})


# -- offline --------------------------------------------------------------------------------------------------------

def test_segments_end_where_one_runs_clips_end():
    assert plan_segments(40, 16, 8, 2) == [(0, 14), (14, 26), (26, 40)]
    assert plan_segments(40, 10, 8, 2) == [(0, 8), (8, 14), (14, 20), (20, 26), (26, 32), (32, 40)]
    assert plan_segments(200, 48, 16, 4) == [(0, 40), (40, 88), (88, 136), (136, 184), (184, 200)]
    assert plan_segments(30, 5, 8, 2) == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 25), (25, 30)]  # < a stride
    assert plan_segments(40, 7, 16, 4) == [(0, 7), (7, 14), (14, 21), (21, 28), (28, 35), (35, 40)]
    for total, size in [(97, 48), (13, 4), (1000, 100)]:
        cuts = plan_segments(total, size, 16, 4)
        assert cuts[0][0] == 0 and cuts[-1][1] == total and all(a < b <= a + size for a, b in cuts)
        assert all(x[1] == y[0] for x, y in zip(cuts, cuts[1:]))


def test_the_long_video_template_is_found_and_other_workflows_say_why_not():
    prompt = _own_prompt()
    video = next(i for i, n in prompt.items() if n["class_type"] == "LoadVideo")
    setup, why = find_long_video(prompt, video, _specs)
    assert why == "" and setup.sampler == "9" and (setup.clip_length, setup.overlap, setup.carried) == (16, 4, 15)
    assert setup.result == ("11", 0)  # VIDiff Keep Luminance, which "Save result" takes
    prompt["8"]["inputs"]["mode"] = "sliding_window"
    assert "mode is sliding_window" in find_long_video(prompt, video, _specs)[1]
    del prompt["9"]["inputs"]["long_video"]
    assert "no VIDiffLongVideo node linked" in find_long_video(prompt, video, _specs)[1]


def test_a_segment_prompt_continues_from_the_carry_and_keeps_the_new_frames():
    prompt = _own_prompt()
    video = next(i for i, n in prompt.items() if n["class_type"] == "LoadVideo")
    setup = LongVideoSetup("9", "8", 16, 4, "autoregressive", ("11", 0))
    job, preview, save = segment_prompt(prompt, setup, video, "seg.mov", 25, 15, 48, "carry.latent", "tag", 15)
    types = {n["class_type"] for n in job.values()}
    assert not types & {"SaveAnimatedWEBP", "VIDiffVideoMetrics"}  # the workflow's own saves: one per segment no more
    cont = job[job["9"]["inputs"]["continue_from"][0]]
    assert cont["class_type"] == "VIDiffContinueFrom" and cont["inputs"]["frames"] == 15
    assert cont["inputs"]["first_frame"] == 25 and job[cont["inputs"]["previous"][0]]["inputs"] == {
        "latent": "carry.latent"}
    frames = job[job[preview]["inputs"]["images"][0]]
    assert frames["inputs"] == {"image": ["11", 0], "batch_index": 15, "length": 4096}
    tail = job[job[save]["inputs"]["samples"][0]]  # the last 15 of 63 frames: the next segment's carry
    assert tail["class_type"] == "LatentFromBatch" and tail["inputs"]["batch_index"] == 48
    assert job[video]["inputs"]["file"] == "seg.mov"
    first, _, _ = segment_prompt(prompt, setup, video, "seg.mov", 0, 0, 40, None, "tag", 15)
    assert "LoadLatent" not in {n["class_type"] for n in first.values()}


def test_the_manifest_resumes_only_the_same_run(tmp_path):
    header = {"kind": "header", "video_sha256": "v", "workflow": "w", "segment_frames": 16, "segments": [[0, 8],
                                                                                                       [8, 16]]}
    log = SegmentLog(tmp_path)
    log.start(header)
    (tmp_path / "seg_0001").mkdir()
    for name in ("frame_000000.png", "carry.latent"):
        (tmp_path / "seg_0001" / name).write_bytes(b"x")
    log.record({"kind": "segment", "segment": 1, "frames": ["seg_0001/frame_000000.png"],
                "carry": "seg_0001/carry.latent"})
    with open(log.path, "a") as f:
        f.write('{"kind": "segm')  # a line cut short by a kill
    assert [e["segment"] for e in log.resume(header)[0]] == [1]
    (tmp_path / "seg_0002").mkdir()
    for name in ("frame_000008.png", "carry.latent"):
        (tmp_path / "seg_0002" / name).write_bytes(b"x")
    log.record({"kind": "segment", "segment": 2, "frames": ["seg_0002/frame_000008.png"],
                "carry": "seg_0002/carry.latent"})  # on a line of its own, after the cut one
    assert [e["segment"] for e in log.resume(header)[0]] == [1, 2]
    assert log.resume({**header, "workflow": "x"}) == ([], "the workflow or its --set values changed")
    assert "--segment-frames changed (was 16)" in log.resume({**header, "segment_frames": 8})[1]
    (tmp_path / "seg_0002" / "carry.latent").unlink()  # a lost file: that segment is made again
    assert [e["segment"] for e in log.resume(header)[0]] == [1]
    (tmp_path / "seg_0001" / "carry.latent").unlink()
    assert log.resume(header) == ([], "")


def test_the_progress_line_shows_frames_done_of_the_total_and_an_eta(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    stream = io.StringIO()
    line = FramesProgress("long.mp4", 400, 9, stream=stream)
    line.begin(3, 88, 48)  # resumed at frame 88: the ETA counts this run's frames only
    assert line.current_status() == "frames 88/400 ETA …, segment 3/9"
    now[0] += 30.0
    line.clip_step(2, 4, 10, 20)  # 3/8 of the segment: 18 frames in 30 s, 294 to go
    assert stream.getvalue().startswith("long.mp4: frames 88/400 ETA 8m10s, segment 3/9 | clip 2/4 step 10/20 [")


@pytest.mark.comfyui
def test_segment_files_reach_comfyui_exactly(tmp_path):
    """A segment's lossless file, decoded by ComfyUI's own LoadVideo code (comfy_api's VideoFromFile, in a process
    of its own), gives back the frames' exact values."""
    code = f"""
import sys, numpy as np
from fractions import Fraction
from pathlib import Path
sys.path.insert(0, {str(comfyui_path())!r})
from comfy_api.latest._input_impl.video_types import VideoFromFile
from vidiff_model.remote.segments import write_lossless
frames = np.random.default_rng(0).integers(0, 256, (7, 48, 66, 3), dtype=np.uint8)
write_lossless(list(frames), Fraction(24000, 1001), Path({str(tmp_path / "seg.mov")!r}))
got = VideoFromFile({str(tmp_path / "seg.mov")!r}).get_components()
assert got.frame_rate == Fraction(24000, 1001), got.frame_rate
assert (got.images.numpy() * 255).round().astype(np.uint8).tolist() == frames.tolist()
print("exact")
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "exact", out.stderr[-3000:]


# -- a real server --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    """A ComfyUI of this module's own: one test restarts it."""
    from comfy_harness import start_test_server

    srv = start_test_server(tmp_path_factory.mktemp("comfyui_segments"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("videos") / "long.mp4"
    write_video(path, FRAMES, 96, 64, 8)
    return path


def _args(server, video: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--server", server.url, "--workflow", "mini_long_video", "--video", str(video), "--out", str(out),
            *(a for s in SETS for a in ("--set", s)), *extra]


def _frames(out: Path) -> np.ndarray:
    from PIL import Image

    files = sorted((out / "long_segments").glob("seg_*/frame_*.png"))
    return np.stack([np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255 for f in files])


def _segments(out: Path) -> list[dict]:
    path = out / "long_segments" / "manifest.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [json.loads(line) for line in lines if line.endswith("}") and '"kind": "segment"' in line]


@pytest.fixture(scope="module")
def reference(own_server, long_video, tmp_path_factory) -> Path:
    """An uninterrupted run in segments of 10 (6 segments: 8, 6, 6, 6, 6 and 8 new frames)."""
    out = tmp_path_factory.mktemp("reference")
    start = time.monotonic()
    done = cli(*_args(own_server, long_video, out, "--segment-frames", "10"))
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"uninterrupted, 6 segments: {time.monotonic() - start:.1f} s")
    assert done.stdout.strip() == str(out / "long_vidiff.mp4")
    assert [(e["start"], e["end"]) for e in _segments(out)] == plan_segments(FRAMES, 10, 8, 2)
    assert "frames 40/40" in done.stderr and "ETA" in done.stderr and "segment 6/6" in done.stderr
    return out


@pytest.mark.comfyui
def test_segments_give_every_frame_once_the_same_for_any_cut_on_clip_ends(own_server, long_video, reference,
                                                                          tmp_path):
    frames, fps = video_info(reference / "long_vidiff.mp4")[0], video_info(reference / "long_vidiff.mp4")[3]
    assert (frames, fps) == (FRAMES, 8.0)
    single = cli(*_args(own_server, long_video, tmp_path / "one", "--segment-frames", "0", "--quiet"))
    assert single.returncode == 0, single.stderr[-3000:]
    webp = next(Path(p) for p in single.stdout.split() if p.endswith(".webp"))
    from comfy_harness import webp_info

    assert webp_info(webp)[0] == FRAMES == len(_frames(reference))  # one prompt: the same frame count
    wide = cli(*_args(own_server, long_video, tmp_path / "wide", "--segment-frames", "16", "--quiet"))
    assert wide.returncode == 0, wide.stderr[-3000:]
    assert len(_segments(tmp_path / "wide")) == 3
    assert np.abs(_frames(tmp_path / "wide") - _frames(reference)).max() <= 1 / 255  # 3 parts or 6: one video

    history, made = len(own_server.get("/history")), (reference / "long_vidiff.mp4").stat().st_mtime_ns
    again = cli(*_args(own_server, long_video, reference, "--segment-frames", "10", "--quiet"))  # all done before
    assert again.returncode == 0 and "segments 1–6 of 6 are done" in again.stderr, again.stderr
    assert len(own_server.get("/history")) == history and again.stdout.strip() == str(reference / "long_vidiff.mp4")
    assert (reference / "long_vidiff.mp4").stat().st_mtime_ns == made
    changed = cli(*_args(own_server, long_video, tmp_path / "wide", "--segment-frames", "16", "--quiet", "--set",
                         "VIDiffSampler.seed=5"))
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert "holds segments of another run (the workflow or its --set values changed); starting over" in changed.stderr
    assert len(own_server.get("/history")) == history + 3 and "resuming" not in changed.stderr


@pytest.mark.comfyui
def test_overlap_guided_segments_too_and_cuts_off_clip_ends_keep_every_frame(own_server, long_video, tmp_path):
    runs = {}
    for size in (16, 10, 5):  # 5 is less than a stride (6): segments end off one run's clip ends
        out = tmp_path / str(size)
        done = cli(*_args(own_server, long_video, out, "--segment-frames", str(size), "--quiet", "--set",
                          "VIDiffLongVideo.mode=overlap_guided"))
        assert done.returncode == 0, done.stderr[-3000:]
        runs[size] = _frames(out)
        assert video_info(out / "long_vidiff.mp4")[0] == FRAMES == len(runs[size])
    assert len(_segments(tmp_path / "5")) == 8
    assert np.abs(runs[16] - runs[10]).max() <= 1 / 255
    assert np.abs(runs[16] - runs[5]).max() > 1 / 255  # other cuts: other clips, the same frames in order


@pytest.mark.comfyui
def test_a_killed_client_resumes_from_the_last_finished_segment(own_server, long_video, reference, tmp_path):
    out = tmp_path / "out"
    proc = cli_popen(*_args(own_server, long_video, out, "--segment-frames", "10", "--quiet"))
    deadline = time.monotonic() + 300
    while not _segments(out) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # kill -9 mid-run, after the first segment's files are on disk
    proc.wait()
    kept = _segments(out)
    assert 1 <= len(kept) < 6 and not (out / "long_vidiff.mp4").exists()
    first = (out / "long_segments" / "seg_0001" / "frame_000000.png").stat().st_mtime_ns
    time.sleep(1)  # let the server finish the prompt the killed client left behind
    again = cli(*_args(own_server, long_video, out, "--segment-frames", "10"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming long.mp4 at frame {kept[-1]['end']} of {FRAMES}" in again.stderr, again.stderr
    segments = _segments(out)
    assert [e["segment"] for e in segments] == list(range(1, 7))
    assert segments[:len(kept)] == kept  # not made again: the same prompts
    assert (out / "long_segments" / "seg_0001" / "frame_000000.png").stat().st_mtime_ns == first
    assert video_info(out / "long_vidiff.mp4")[0] == FRAMES
    assert np.abs(_frames(out) - _frames(reference)).max() <= 1 / 255


@pytest.mark.comfyui
def test_a_restarted_server_resumes_from_the_last_finished_segment(own_server, long_video, reference, tmp_path):
    out = tmp_path / "out"
    proc = cli_popen(*_args(own_server, long_video, out, "--segment-frames", "10", "--quiet"))
    deadline = time.monotonic() + 300
    while len(_segments(out)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    own_server.process.kill()  # the server dies between segments (or in one): the client stops with one line
    own_server.process.wait()
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 3, stderr
    assert "rerun the same command" in stderr and "Traceback" not in stderr, stderr
    kept = _segments(out)
    restart(own_server)
    again = cli(*_args(own_server, long_video, out, "--segment-frames", "10", "--quiet"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming long.mp4 at frame {kept[-1]['end']}" in again.stderr
    assert _segments(out)[:len(kept)] == kept
    assert video_info(out / "long_vidiff.mp4")[0] == FRAMES
    assert np.abs(_frames(out) - _frames(reference)).max() <= 1 / 255


@pytest.mark.comfyui
def test_the_output_has_the_sources_frame_rate_and_audio(own_server, tmp_path):
    import av

    video = tmp_path / "long.mov"  # 24 frames at 12 fps with 2 s of PCM audio (MP4 cannot hold it: made AAC)
    with av.open(str(video), "w") as c:
        s = c.add_stream("libx264", rate=12)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        a = c.add_stream("pcm_s16le", rate=16000, layout="mono")
        for i in range(24):
            for p in s.encode(av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 10, np.uint8), format="rgb24")):
                c.mux(p)
        for k in range(2 * 16000 // 1600):
            tone = (np.sin(np.arange(1600) / 8) * 8000).astype(np.int16)[None]
            frame = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
            frame.sample_rate, frame.pts = 16000, k * 1600
            for p in a.encode(frame):
                c.mux(p)
        for stream in (s, a):
            for p in stream.encode():
                c.mux(p)
    done = cli(*_args(own_server, video, tmp_path / "out", "--segment-frames", "10", "--quiet"))
    assert done.returncode == 0, done.stderr[-3000:]
    with av.open(done.stdout.strip()) as result:
        assert [st.type for st in result.streams] == ["video", "audio"]
        assert result.streams.audio[0].codec_context.name == "aac"
        assert abs(float(result.duration / 1e6) - 2.0) < 0.15
        assert float(result.streams.video[0].average_rate) == 12.0
        assert sum(1 for _ in result.decode(video=0)) == 24


@pytest.mark.comfyui
def test_bad_input_is_one_line_naming_it(own_server, long_video, tmp_path):
    small = cli(*_args(own_server, long_video, tmp_path, "--segment-frames", "1"))
    assert small.returncode == 2 and "Traceback" not in small.stderr
    assert small.stderr.startswith("error: --segment-frames 1 is smaller than the long-video overlap (2 frames"), \
        small.stderr
    import av

    parts = []
    for i, (w, h) in enumerate([(96, 64), (64, 48)]):  # two MPEG-PS files of different sizes, one after the other
        part = tmp_path / f"part{i}.mpg"
        with av.open(str(part), "w", format="mpeg") as c:
            s = c.add_stream("mpeg2video", rate=8)
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            for k in range(12):
                for p in s.encode(av.VideoFrame.from_ndarray(np.full((h, w, 3), k * 9, np.uint8), format="rgb24")):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        parts.append(part.read_bytes())
    sizes = tmp_path / "sizes.mpg"
    sizes.write_bytes(b"".join(parts))
    changed = cli(*_args(own_server, sizes, tmp_path, "--segment-frames", "8"))
    assert changed.returncode == 2 and len(changed.stderr.strip().splitlines()) == 1, changed.stderr
    assert f"--video {sizes}: the frame size changes at frame" in changed.stderr
    assert "from 96×64 to 64×48" in changed.stderr
    plain = cli("run", "--server", own_server.url, "--workflow", "mini_recolor", "--video", str(long_video), "--out",
                str(tmp_path), "--segment-frames", "8")
    assert plain.returncode == 2 and "cannot go in segments" in plain.stderr, plain.stderr
