"""Your own video in a vidiff-mini template by swapping one node: VIDiff Load Sample Clip → VIDiff Load Video
(vidiff-mini), which resizes to the model's size, keeps the template's frame count and has VIDiff Degrade Video
pass the frames through. The library (vidiff_model.mini.footage) on generated videos, then the templates in a
real ComfyUI through its HTTP API."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from comfy_harness import MINI_API, webp_info, write_video

from vidiff_model.errors import VIDiffError
from vidiff_model.mini.footage import APPLY, PASS_THROUGH, degrade_footage, fit_frame, load_footage

def _write_webp(path, frames: int, width: int, height: int, band: int) -> None:
    """A lossless animated WebP: frame i green (100 + i), with red bands `band` px wide at the left and right
    (cropped away when the target is square and band = (width - height) / 2)."""
    from PIL import Image

    pictures = []
    for i in range(frames):
        image = np.zeros((height, width, 3), np.uint8)
        image[..., 1] = 100 + i
        image[:, :band, 0] = image[:, width - band:, 0] = 200
        pictures.append(Image.fromarray(image))
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=125, loop=0, lossless=True)


def test_load_footage_crops_the_centre_resizes_and_keeps_the_frame_count(tmp_path):
    _write_webp(tmp_path / "wide.webp", frames=20, width=96, height=64, band=16)
    images, fps = load_footage(tmp_path / "wide.webp", frames=16, width=32, height=32)
    assert images.shape == (16, 32, 32, 3) and images.dtype == torch.float32
    assert fps == 8.0
    green = (100 + torch.arange(16.0)) / 255
    assert torch.allclose(images[..., 1], green[:, None, None].expand(16, 32, 32), atol=1e-3)  # frames in order
    assert float(images[..., 0].max()) < 1e-3 and float(images[..., 2].max()) < 1e-3  # the red bands cut off
    assert load_footage(tmp_path / "wide.webp", frames=0, width=64, height=32)[0].shape == (20, 32, 64, 3)
    assert load_footage(tmp_path / "wide.webp", frames=50, width=32, height=32)[0].shape[0] == 20  # all there is


def test_load_footage_reads_an_mp4_at_the_models_size(tmp_path):
    write_video(tmp_path / "clip.mp4", frames=12, width=80, height=48, fps=10)
    images, fps = load_footage(tmp_path / "clip.mp4", frames=5)
    assert images.shape == (5, 128, 128, 3) and fps == 10.0
    assert 0 <= float(images.min()) and float(images.max()) <= 1 and float(images.std()) > 0.05


def test_fit_frame_keeps_a_frame_of_the_right_size():
    frame = torch.rand(32, 64, 3)
    assert torch.equal(fit_frame(frame, 64, 32), frame)


@pytest.mark.parametrize("kwargs, message", [
    ({"width": 100}, "width: 100 is not a positive multiple of 32"),
    ({"height": 0}, "height: 0 is not a positive multiple of 32"),
    ({"frames": -1}, "frames: -1 is negative"),
])
def test_load_footage_names_a_bad_setting(tmp_path, kwargs, message):
    write_video(tmp_path / "clip.mp4", frames=3, width=32, height=32)
    with pytest.raises(VIDiffError, match=message):
        load_footage(tmp_path / "clip.mp4", **kwargs)


def test_load_footage_names_a_file_it_cannot_use(tmp_path):
    import av

    (tmp_path / "broken.mp4").write_bytes(b"not a video" * 100)
    with pytest.raises(VIDiffError, match=r"^video: .*broken\.mp4 could not be decoded"):
        load_footage(tmp_path / "broken.mp4")
    container = av.open(str(tmp_path / "empty.avi"), "w")  # a video stream without a frame
    stream = container.add_stream("libx264", rate=8)
    stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
    container.start_encoding()  # writes the header
    container.close()
    with pytest.raises(VIDiffError, match=r"^video: .*empty\.avi has no video frames"):
        load_footage(tmp_path / "empty.avi")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(VIDiffError, match=r"^video: \.txt is not a supported video"):
        load_footage(tmp_path / "notes.txt")


def test_degrade_footage_passes_haze_and_blur_through_and_still_grays_and_cuts_holes():
    frames = torch.rand(4, 32, 32, 3)
    for task in ("dehaze", "deblur"):
        out, mask = degrade_footage(frames, task, 0, PASS_THROUGH)
        assert out is frames and mask.shape == (4, 32, 32) and not mask.any()
        assert not torch.allclose(degrade_footage(frames, task, 0, APPLY)[0], frames, atol=1e-2)
    gray, _ = degrade_footage(frames, "recolor", 0, PASS_THROUGH)
    assert torch.allclose(gray[..., 0], gray[..., 1]) and not torch.allclose(gray, frames)
    _, holes = degrade_footage(frames, "inpaint", 0, PASS_THROUGH)
    assert holes.any()
    with pytest.raises(VIDiffError, match="degradation: 'skip' is not a choice"):
        degrade_footage(frames, "dehaze", 0, "skip")


# -- in a real ComfyUI -----------------------------------------------------------------------------------------
SWAP = "VIDiffLoadVideo"


def _swap(prompt: dict, video: str, frames: int = 8, **settings) -> dict:
    """The template with its one VIDiff Load Sample Clip node swapped for VIDiff Load Video (same id and outputs),
    2 sampler steps; nothing else changes."""
    prompt = copy.deepcopy(prompt)
    (loader,) = [k for k, n in prompt.items() if n["class_type"] == "VIDiffLoadSampleClip"]
    prompt[loader] = {"class_type": SWAP, "inputs": {"video": video, "frames": frames, **settings},
                      "_meta": {"title": "Your video"}}
    for node in prompt.values():
        if node["class_type"] == "VIDiffSampler":
            node["inputs"]["steps"] = 2
    return prompt


def _metrics(result: dict, prompt: dict, title: str) -> dict[str, float]:
    node_id = next(k for k, n in prompt.items() if n["_meta"]["title"] == title)
    text = result["history"]["outputs"][node_id]["text"][0]
    return {k: float(v) for k, v in (line.split(None, 1) for line in text.splitlines()) if not v.startswith("unav")}


@pytest.fixture(scope="module")
def own_video(server) -> str:
    write_video(server.workdir / "input" / "own_clip.mp4", frames=20, width=96, height=64, fps=12)
    return "own_clip.mp4"


@pytest.mark.comfyui
def test_the_node_is_listed_with_tooltips_and_the_degradation_keeps_its_inputs(server):
    info = server.get("/object_info")
    node = info[SWAP]
    assert node["display_name"] == "VIDiff Load Video (vidiff-mini)" and node["category"] == "VIDiff/loaders"
    assert list(node["input"]["required"]) == ["video"]  # the rest have defaults: an API swap names only the video
    inputs = {**node["input"]["required"], **node["input"]["optional"]}
    assert list(inputs) == ["video", "frames", "width", "height", "degradation"]
    assert all(spec[1].get("tooltip") for spec in inputs.values()) and all(node["output_tooltips"])
    assert inputs["video"][1].get("video_upload") is True  # the upload button, as LoadVideo has
    assert inputs["frames"][1]["default"] == 16 and inputs["width"][1]["default"] == 128
    assert node["output"] == info["VIDiffLoadSampleClip"]["output"] == ["IMAGE", "FLOAT", "INT"]  # a swap keeps links
    degrade = info["VIDiffDegradeVideo"]["input"]
    assert list(degrade["required"]) == ["images", "degradation", "seed"] and not degrade.get("optional")


@pytest.mark.comfyui
@pytest.mark.parametrize("name", ["mini_dehaze", "mini_inpaint"])
def test_a_mini_template_runs_on_your_video_by_swapping_one_node(server, own_video, name):
    prompt = _swap(MINI_API[name], own_video)
    result = server.run(prompt, timeout=900)
    assert result["status"] == "success", result.get("error") or server.log_text()[-3000:]
    given = _metrics(result, prompt, "Degraded input vs clean")  # the degradation's output against your frames
    restored = _metrics(result, prompt, "Result vs clean")
    assert given["frames"] == restored["frames"] == 8
    if name == "mini_dehaze":  # passed through: the model gets your frames exactly
        assert math.isinf(given["psnr"]) and given["ssim"] == pytest.approx(1.0)
    else:  # inpaint still cuts the template's holes into your clip (a video carries no hole mask)
        assert given["psnr"] < 30
    assert restored["psnr"] < 60  # the model changed something
    saved = [i for out in result["history"]["outputs"].values() for i in out.get("images", [])]
    assert saved
    for item in saved:
        frames, width, height, durations = webp_info(server.workdir / "output" / item["subfolder"] / item["filename"])
        assert (frames, width, height) == (8, 128, 128)
        assert set(durations) == {83}  # the video's 12 fps, from the node's fps output


def _degrade_only(video: str, degradation: str, mode: str) -> dict:
    return {
        "1": {"class_type": SWAP, "inputs": {"video": video, "frames": 4, "width": 64, "height": 32,
                                             "degradation": mode}, "_meta": {"title": "Your video"}},
        "2": {"class_type": "VIDiffDegradeVideo", "inputs": {"images": ["1", 0], "degradation": degradation,
                                                             "seed": 0}, "_meta": {"title": "Degrade"}},
        "3": {"class_type": "VIDiffVideoMetrics", "inputs": {"prediction": ["2", 0], "reference": ["1", 0],
                                                             "warping_error": False}, "_meta": {"title": "m"}},
    }


@pytest.mark.comfyui
@pytest.mark.parametrize("degradation, mode, passed", [
    ("haze", PASS_THROUGH, True), ("blur", PASS_THROUGH, True), ("haze", APPLY, False),
    ("grayscale", PASS_THROUGH, False),  # recolor still gets gray frames
])
def test_the_degradation_follows_the_loaders_setting(server, own_video, degradation, mode, passed):
    prompt = _degrade_only(own_video, degradation, mode)
    result = server.run(prompt)
    assert result["status"] == "success", result.get("error")
    metrics = _metrics(result, prompt, "m")
    assert metrics["frames"] == 4
    assert math.isinf(metrics["psnr"]) == passed, metrics


@pytest.mark.comfyui
def test_bad_videos_and_settings_are_named(server, own_video):
    inputs = server.workdir / "input"
    (inputs / "broken_clip.mp4").write_bytes(b"not a video" * 100)
    prompt = _degrade_only("broken_clip.mp4", "haze", PASS_THROUGH)
    result = server.run(prompt)
    assert result["status"] == "error", result
    assert result["error"]["exception_message"].startswith("video: ")
    assert "broken_clip.mp4 could not be decoded" in result["error"]["exception_message"]

    prompt = _degrade_only(own_video, "haze", PASS_THROUGH)
    prompt["1"]["inputs"]["width"] = 100
    result = server.run(prompt)
    assert result["status"] == "error" and result["error"]["exception_message"].startswith(
        "width: 100 is not a positive multiple of 32")

    prompt = _degrade_only("no_such_clip.mp4", "haze", PASS_THROUGH)
    result = server.run(prompt)
    assert result["status"] == "rejected", result
    assert "video: 'no_such_clip.mp4' is not in ComfyUI's input folder" in str(result["error"])
