"""VIDiff Sampler under VideoHelperSuite's Meta Batch Manager, in a real ComfyUI with the unmodified VideoHelperSuite:
the batched video against one run, seams at batch borders, state kept per manager and dropped, and bad wiring.

The graph is vidiff-mini's (shipped, runs on the CPU) on a generated 128×128 clip: Meta Batch Manager → Load Video
(VideoHelperSuite) → VAE Encode → VIDiff Sampler (long_video, meta_batch) → VAE Decode → Video Combine (meta_batch).
Every batch also saves the sampler's LATENT (core SaveLatent), so the batched video is compared in float32.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from comfy_harness import write_video
from peer_packs import require_peers, run_until_idle, start_vhs_server
from safetensors.torch import load_file

from vidiff_model.long_video import plan_clips, seam_report

CLIP = "meta_batch_clip.mp4"
FRAMES = 52  # clip_length 16, overlap 4: one run's clips end at 16, 28, 40, 52


@pytest.fixture(scope="module")
def vhs_server(tmp_path_factory):
    require_peers("videohelpersuite")
    # torch attention: sums in a fixed order, so batched and one-run sums agree to 1e-5
    server = start_vhs_server(tmp_path_factory.mktemp("meta_batch"), ("--use-pytorch-cross-attention",))
    write_video(server.workdir / "input" / CLIP, FRAMES, 128, 128, fps=12)
    yield server
    server.stop()


def batched_prompt(frames_per_batch: int, prefix: str, mode: str = "autoregressive", steps: int = 3,
                   seed: int = 5) -> dict:
    nodes = {
        "1": ("VHS_BatchManager", {"frames_per_batch": frames_per_batch}),
        "2": ("VHS_LoadVideo", {"video": CLIP, "force_rate": 0, "custom_width": 0, "custom_height": 0,
                                "frame_load_cap": 0, "skip_first_frames": 0, "select_every_nth": 1,
                                "meta_batch": ["1", 0]}),
        "3": ("VAELoader", {"vae_name": "vidiff_mini_vae.safetensors"}),
        "4": ("VAEEncode", {"pixels": ["2", 0], "vae": ["3", 0]}),
        "5": ("CLIPLoader", {"clip_name": "vidiff_mini_clip_l.safetensors", "type": "stable_diffusion",
                             "device": "default"}),
        "6": ("VIDiffModelLoader", {"model_name": "vidiff_mini.safetensors", "weight_dtype": "auto",
                                    "beta_schedule": "autoselect"}),
        "7": ("VIDiffInstructionEncode", {"model": ["6", 0], "clip": ["5", 0],
                                          "instruction": "Remove the haze from the video"}),
        "8": ("VIDiffLongVideo", {"clip_length": 16, "overlap": 4, "mode": mode, "weighting": "pyramid"}),
        "9": ("VIDiffSampler", {"model": ["6", 0], "instruction": ["7", 0], "source": ["4", 0], "seed": seed,
                                "steps": steps, "video_cfg": 1.0, "text_cfg": 1.0, "sampler_name": "euler",
                                "scheduler": "normal", "long_video": ["8", 0], "meta_batch": ["1", 0]}),
        "10": ("SaveLatent", {"samples": ["9", 0], "filename_prefix": prefix}),
        "11": ("VAEDecode", {"samples": ["9", 0], "vae": ["3", 0]}),
        "12": ("VHS_VideoCombine", {"images": ["11", 0], "frame_rate": 12, "loop_count": 0,
                                    "filename_prefix": prefix, "format": "video/h264-mp4", "pingpong": False,
                                    "save_output": True, "meta_batch": ["1", 0], "pix_fmt": "yuv420p", "crf": 19,
                                    "save_metadata": True, "trim_to_audio": False}),
    }
    return {k: {"class_type": c, "inputs": i} for k, (c, i) in nodes.items()}


def saved_latents(server, prefix: str) -> list[torch.Tensor]:
    files = sorted((server.workdir / "output").glob(f"{prefix}_*.latent"))
    return [load_file(str(f))["latent_tensor"] for f in files]


def video_of(server, frames_per_batch: int, prefix: str, **kwargs) -> list[torch.Tensor]:
    """The saved latents of each batch of a run (run now unless an earlier test did)."""
    if not saved_latents(server, prefix):
        entries = run_until_idle(server, batched_prompt(frames_per_batch, prefix, **kwargs))
        assert not batch_errors(entries), batch_errors(entries)
    return saved_latents(server, prefix)


def batch_errors(entries: list[dict]) -> list[str]:
    out = []
    for entry in entries:
        for kind, data in entry["status"].get("messages", []):
            if kind == "execution_error":
                out.append(data["exception_message"].strip())
    return out


@pytest.mark.parametrize("mode", ["autoregressive", "overlap_guided"])
def test_batches_cut_at_clip_ends_equal_one_run(vhs_server, mode):
    """28 frames per batch (16 + 12: batches end where clips end) gives the one-batch video, bit for bit."""
    one = run_until_idle(vhs_server, batched_prompt(64, f"one_{mode}", mode))
    assert len(one) == 1 and not batch_errors(one)
    (whole,) = saved_latents(vhs_server, f"one_{mode}")
    assert whole.shape == (FRAMES, 4, 16, 16)
    entries = run_until_idle(vhs_server, batched_prompt(28, f"b28_{mode}", mode))
    assert len(entries) == 2 and not batch_errors(entries)
    parts = saved_latents(vhs_server, f"b28_{mode}")
    assert [p.shape[0] for p in parts] == [28, 24]
    torch.testing.assert_close(torch.cat(parts), whole, rtol=0, atol=1e-5)
    videos = sorted((vhs_server.workdir / "output").glob(f"b28_{mode}_*.mp4"))
    assert len(videos) == 1, videos  # one file: Video Combine appended both batches


def test_any_batch_size_keeps_every_frame_and_seams(vhs_server):
    """20 frames per batch (not at clip ends, last batch 12): all frames, in order; the transitions at batch borders
    change no more than the clip seams inside batches (docs/sampling.md's measure)."""
    entries = run_until_idle(vhs_server, batched_prompt(20, "b20", steps=4))
    assert len(entries) == 3 and not batch_errors(entries)
    parts = saved_latents(vhs_server, "b20")
    assert [p.shape[0] for p in parts] == [20, 20, 12]
    video = torch.cat(parts).permute(1, 0, 2, 3).unsqueeze(0)  # (1, 4, F, h, w)
    # where the output switches from one clip to the next, batch by batch (each batch continues from 15 frames)
    borders, seams, done = [20, 40], [], 0
    for n in (20, 20, 12):
        clips = plan_clips(done + n, 16, 4, done=done)
        seams += [c.new_start for c in clips[1:]]
        done += n
    inner = [s for s in seams if s not in borders]
    d = seam_report(video, []).inner_change
    changes = (video[:, :, 1:] - video[:, :, :-1]).abs().flatten(3).mean(dim=(0, 1, 3))  # (F − 1,)
    at_borders = float(changes[[b - 1 for b in borders]].mean())
    at_seams = float(changes[[s - 1 for s in inner]].mean())
    print(f"frame change: batch borders {at_borders:.4f}, clip seams inside batches {at_seams:.4f}, all {d:.4f}")
    assert at_borders <= 1.25 * at_seams, (at_borders, at_seams)


def _error_of(server, prompt: dict) -> str:
    entries = run_until_idle(server, prompt, timeout=300)
    errors = batch_errors(entries)
    assert len(errors) == 1, entries
    return errors[0]


def test_bad_wiring_is_named(vhs_server):
    # frames_per_batch below the overlap
    assert _error_of(vhs_server, batched_prompt(3, "bad_fpb")).startswith(
        "frames_per_batch: Meta Batch Manager VHS_BatchManager (node 1) hands out 3 frames per batch, fewer than the "
        "long-video overlap (4)")
    # the loader on the manager, the sampler not
    prompt = batched_prompt(20, "bad_unlinked")
    del prompt["9"]["inputs"]["meta_batch"]
    assert _error_of(vhs_server, prompt).startswith(
        "meta_batch: the source comes from VHS_LoadVideo (node 2), which Meta Batch Manager VHS_BatchManager (node 1) "
        "hands out a batch at a time; link that manager's meta_batch into VIDiff Sampler too")
    # the sampler on the manager, its source from a loader that is not
    prompt = batched_prompt(20, "bad_source")
    prompt["13"] = {"class_type": "VHS_LoadVideo", "inputs": {**prompt["2"]["inputs"]}}
    del prompt["13"]["inputs"]["meta_batch"]
    prompt["4"]["inputs"]["pixels"] = ["13", 0]
    assert _error_of(vhs_server, prompt).startswith(
        "source: VIDiff Sampler takes meta_batch from VHS_BatchManager (node 1), but it does not come from a "
        "VideoHelperSuite loader")
    # sliding_window cannot go batch by batch
    assert "sliding_window denoises the whole video at every step" in _error_of(
        vhs_server, batched_prompt(20, "bad_mode", "sliding_window"))


def test_a_batch_without_the_one_before_is_refused(vhs_server):
    """A batch whose predecessor VIDiff never saw (the server restarted mid-video) fails with one line, and the
    next run of the workflow starts the video afresh."""
    prompt = batched_prompt(20, "orphan")
    prompt["1"]["inputs"]["requeue"] = 2  # what VideoHelperSuite puts in the third batch's prompt
    message = _error_of(vhs_server, prompt)
    assert message.startswith("meta_batch: this is batch 3 of the video, but VIDiff Sampler holds no state, not "
                              "batch 2's")
    assert "queue the workflow again to start from the first batch" in message
    entries = run_until_idle(vhs_server, batched_prompt(20, "after_orphan", steps=4))
    assert not batch_errors(entries)
    torch.testing.assert_close(torch.cat(saved_latents(vhs_server, "after_orphan")),
                               torch.cat(video_of(vhs_server, 20, "b20", steps=4)), rtol=0, atol=1e-5)


def test_state_is_dropped_at_the_end_and_on_cancel(vhs_server):
    log = vhs_server.workdir / "comfyui.log"
    start = len(log.read_text(errors="replace"))
    run_until_idle(vhs_server, batched_prompt(20, "drop_end", steps=2))
    text = log.read_text(errors="replace")[start:]
    assert text.count("VIDiff: meta batch") == 3, text[-3000:]
    assert "VIDiff Sampler (node 9): long-video state dropped after the last batch (52 frames)" in text
    # cancel within the second batch's sampling
    start = len(log.read_text(errors="replace"))
    code, body = vhs_server.post("/prompt", {"prompt": batched_prompt(20, "drop_cancel", steps=60)})
    assert code == 200, body
    deadline = time.time() + 300
    while "VIDiff: meta batch 2" not in log.read_text(errors="replace")[start:]:
        assert time.time() < deadline, "the second batch never started"
        time.sleep(0.2)
    time.sleep(1.0)
    vhs_server.post("/interrupt", {})
    deadline = time.time() + 120
    while "long-video state dropped (cancelled" not in log.read_text(errors="replace")[start:]:
        assert time.time() < deadline, log.read_text(errors="replace")[start:][-3000:]
        time.sleep(0.2)
    while vhs_server.get("/queue")["queue_running"]:
        time.sleep(0.2)
    assert len(saved_latents(vhs_server, "drop_cancel")) == 1  # the first batch only


def test_continue_from_carries_a_segment(vhs_server):
    """VIDiff Continue From (the client's segments): two prompts, the second continuing from the first's saved
    latents, give the batched video's frames; a previous latent of another frame size is named."""
    ref = torch.cat(video_of(vhs_server, 28, "b28_autoregressive", mode="autoregressive"))
    first = batched_prompt(28, "seg0")
    for p in (first,):
        del p["1"], p["12"], p["9"]["inputs"]["meta_batch"], p["2"]["inputs"]["meta_batch"]
        p["2"]["inputs"]["frame_load_cap"] = 28
        p["13"] = {"class_type": "VIDiffContinueFrom", "inputs": {"frames": 0, "first_frame": 0}}
        p["9"]["inputs"]["continue_from"] = ["13", 0]
    assert not batch_errors(run_until_idle(vhs_server, first))
    (seg0,) = saved_latents(vhs_server, "seg0")
    (vhs_server.workdir / "input" / "seg0.latent").write_bytes(
        sorted((vhs_server.workdir / "output").glob("seg0_*.latent"))[0].read_bytes())
    second = json.loads(json.dumps(first))
    second["10"]["inputs"]["filename_prefix"] = "seg1"
    second["2"]["inputs"].update(skip_first_frames=28 - 15, frame_load_cap=0)
    second["14"] = {"class_type": "LoadLatent", "inputs": {"latent": "seg0.latent"}}
    second["13"]["inputs"] = {"frames": 15, "first_frame": 13, "previous": ["14", 0]}
    assert not batch_errors(run_until_idle(vhs_server, second))
    (seg1,) = saved_latents(vhs_server, "seg1")
    assert seg1.shape[0] == FRAMES - 13
    torch.testing.assert_close(seg1[:15], seg0[13:], rtol=0, atol=0)  # the carried frames, unchanged
    torch.testing.assert_close(torch.cat([seg0, seg1[15:]]), ref, rtol=0, atol=1e-5)
    # a previous latent of another size
    bad = json.loads(json.dumps(second))
    bad["15"] = {"class_type": "LatentUpscale", "inputs": {"samples": ["14", 0], "upscale_method": "nearest-exact",
                                                             "width": 64, "height": 64, "crop": "disabled"}}
    bad["13"]["inputs"]["previous"] = ["15", 0]
    assert _error_of(vhs_server, bad).startswith(
        "continue_from (previous against the source): the frame size changed from 64×64 to 128×128 pixels")

