"""vidiff-mini evaluation: style targets, classical baselines and the quality-table command (bench/mini_quality.py)."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from vidiff_model.metrics import psnr_per_frame
from vidiff_model.mini.baselines import BASELINES, baseline, dcp_patch
from vidiff_model.mini.styles import STYLES, style_instruction, style_target
from vidiff_model.training import synthetic

ROOT = Path(__file__).resolve().parents[1]
DEBLUR_MARGIN_DB = 0.5  # the blind deblur baseline may lose at most this much on a smooth image


def photo(size: int = 128) -> torch.Tensor:
    """A real photograph (scikit-image's bundled 'coffee'), centre square, (1, size, size, 3) in [0, 1]."""
    from skimage import data, transform

    img = data.coffee()
    h, w = img.shape[:2]
    s = min(h, w)
    img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return torch.from_numpy(transform.resize(img, (size, size), anti_aliasing=True)).float()[None]


def smooth_scene(frames: int = 3, size: int = 96) -> torch.Tensor:
    """(F, size, size, 3) saturated smooth colours (hue varying slowly, one channel always dark, as the dark
    channel prior expects of a clear scene) with a few soft-edged discs that move one pixel per frame."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    out = []
    for f in range(frames):
        hue = 2 * math.pi * (0.8 * xx + 0.5 * yy + 0.3 * torch.sin(3 * yy + f * 0.05))
        rgb = torch.stack([0.5 + 0.42 * torch.cos(hue + k * 2 * math.pi / 3) for k in range(3)], dim=-1)
        for cy, cx, r, color in ((0.3, 0.3, 0.15, (0.9, 0.2, 0.1)), (0.65, 0.6, 0.2, (0.1, 0.3, 0.8))):
            d = ((yy - cy) ** 2 + (xx - cx - f / size) ** 2).sqrt()
            a = ((r - d) * size / 1.5).clamp(0, 1)[..., None]  # 1.5 px soft edge
            rgb = rgb * (1 - a) + torch.tensor(color) * a
        out.append(rgb)
    return torch.stack(out).clamp(0, 1)


def psnr(a, b) -> float:
    return float(psnr_per_frame(torch.as_tensor(a).float(), torch.as_tensor(b).float()).mean())


# -- styles --------------------------------------------------------------------------------------------------
def test_styles_table_has_four_styles_with_templates():
    assert list(STYLES) == ["sketch", "watercolor", "sepia", "cartoon"]
    for name, (fn, templates) in STYLES.items():
        assert callable(fn) and 3 <= len(templates) <= 4 and len(set(templates)) == len(templates)
        assert style_instruction(name) == templates[0] and name.lower() in " ".join(templates).lower()
    assert style_instruction("sketch") == "Turn the video to Sketch Style."
    assert style_instruction("watercolor") == "Transform the video to Watercolor Style."


def test_styles_deterministic_distinct_and_typed():
    frame = photo()
    targets = {s: style_target(frame, s) for s in STYLES}
    for s, t in targets.items():
        assert t.shape == frame.shape and t.dtype == frame.dtype and 0 <= float(t.min()) <= float(t.max()) <= 1
        assert torch.equal(style_target(frame, s), t), f"{s} is not deterministic"
        assert float((t - frame).abs().mean()) > 0.03, f"{s} barely changes the frame"
    # each style's target differs clearly from every other's (mean absolute difference on [0, 1])
    for a, b in itertools.combinations(STYLES, 2):
        assert float((targets[a] - targets[b]).abs().mean()) > 0.05, (a, b)
    sk = targets["sketch"]
    assert torch.equal(sk[..., 0], sk[..., 1]) and torch.equal(sk[..., 1], sk[..., 2])  # gray in three channels
    # numpy in, numpy out; uint8 in, uint8 out; frame by frame
    np_out = style_target(frame.numpy(), "sepia")
    assert isinstance(np_out, np.ndarray) and np.allclose(np_out, targets["sepia"].numpy(), atol=1e-6)
    u8 = style_target((frame.numpy() * 255).round().astype(np.uint8), "cartoon")
    assert u8.dtype == np.uint8
    two = torch.cat([frame, frame.flip(2)])
    assert torch.equal(style_target(two, "watercolor")[:1], targets["watercolor"])


def test_unknown_style_names_the_choices():
    with pytest.raises(ValueError, match="sketch, watercolor, sepia, cartoon"):
        style_target(photo(32), "oil")


def test_styles_are_fast_on_small_frames():
    # CPU time, not wall time: on a busy shared machine the wall clock measures the other jobs
    frames = photo(128).expand(4, -1, -1, -1).contiguous()
    for s in STYLES:
        style_target(frames[:1], s)
        t = time.process_time()
        style_target(frames, s)
        ms = (time.process_time() - t) / 4 * 1000
        assert ms < 200, f"{s}: {ms:.0f} ms of CPU per 128² frame"


# -- baselines -----------------------------------------------------------------------------------------------
def test_dehaze_baseline_improves_psnr():
    clean = smooth_scene()
    hazy = synthetic.add_haze(clean, torch.Generator().manual_seed(3))
    out = BASELINES["dehaze"](hazy)
    assert out.shape == clean.shape and isinstance(out, torch.Tensor)
    assert psnr(out, clean) > psnr(hazy, clean) + 3, (psnr(out, clean), psnr(hazy, clean))
    assert dcp_patch(128, 128) == 5 and dcp_patch(400, 600) == 15 and dcp_patch(32, 32) == 3


def test_inpaint_baseline_improves_psnr_and_keeps_known_pixels():
    clean = smooth_scene()
    holes, mask = synthetic.inpaint_source(clean, torch.Generator().manual_seed(1))
    out = baseline("inpaint", holes, mask=mask)
    assert psnr(out, clean) > psnr(holes, clean) + 5, (psnr(out, clean), psnr(holes, clean))
    keep = (mask < 0.5)[None, ..., None].expand_as(clean)
    assert torch.equal(out[keep], holes[keep])
    per_frame = baseline("inpaint", holes.numpy(), mask=mask[None].expand(3, -1, -1).numpy())  # (F, H, W) mask
    assert isinstance(per_frame, np.ndarray) and np.allclose(per_frame, out.numpy(), atol=1e-6)


def test_deblur_baseline_not_worse_than_margin():
    clean = smooth_scene()
    blurry = synthetic.add_motion_blur(clean, torch.Generator().manual_seed(2), length=(7, 7))
    out = BASELINES["deblur"](blurry)
    assert psnr(out, clean) > psnr(blurry, clean) - DEBLUR_MARGIN_DB, (psnr(out, clean), psnr(blurry, clean))


def test_recolor_baseline_is_the_gray_input_and_unknown_task_named():
    gray = synthetic.grayscale(smooth_scene())
    assert torch.allclose(BASELINES["recolor"](gray, mask=None), gray)
    with pytest.raises(ValueError, match="dehaze, deblur, inpaint, recolor"):
        baseline("segmentation", gray)


# -- the quality-table command -------------------------------------------------------------------------------
def _load_bench():
    spec = importlib.util.spec_from_file_location("mini_quality", ROOT / "bench" / "mini_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_quality_table_measures_what_the_mini_templates_run():
    """bench/mini_quality.py's defaults are the shipped templates' sampler settings, so the README's table is
    what a user gets from a click on a mini template."""
    from comfy_harness import MINI_API

    a = _load_bench().parse([])
    samplers = {name: n["inputs"] for name, p in MINI_API.items() for n in p.values()
                if n["class_type"] == "VIDiffSampler"}
    assert len(samplers) == len(MINI_API)
    for name, inputs in samplers.items():
        style = name.startswith("mini_style_")
        expected = dict(steps=a.steps, sampler_name=a.sampler, scheduler=a.scheduler,
                        video_cfg=a.style_video_cfg if style else a.video_cfg,
                        text_cfg=a.style_text_cfg if style else a.text_cfg)
        assert {k: inputs[k] for k in expected} == expected, name


def test_the_quality_table_finishes_outputs_as_the_mini_templates_do():
    """The 'as finished' row (Translator.finish) is what the restoration templates save: the same node per task."""
    from comfy_harness import MINI_API

    for name, prompt in MINI_API.items():
        by_type = {n["class_type"]: (k, n["inputs"]) for k, n in prompt.items()}
        saved = next(n["inputs"]["images"][0] for n in prompt.values()
                     if n["class_type"] == "SaveAnimatedWEBP" and n["_meta"]["title"] == "Save result")
        finish = prompt[saved]
        if "VIDiffDegradeVideo" not in by_type:  # styles: the decoded output as it is
            assert finish["class_type"] == "VAEDecode", name
            continue
        degraded = [by_type["VIDiffDegradeVideo"][0], 0]
        if name in ("mini_recolor", "mini_long_video"):
            assert finish["class_type"] == "VIDiffKeepLuminance" and finish["inputs"]["source"] == degraded, name
        elif name == "mini_inpaint":
            assert finish["class_type"] == "ImageCompositeMasked" and finish["inputs"]["destination"] == degraded
            assert finish["inputs"]["mask"] == [degraded[0], 1] and finish["inputs"]["x"] == finish["inputs"]["y"] == 0
        else:
            assert finish["class_type"] == "VIDiffDetailTransfer", name
            assert finish["inputs"]["source"] == degraded and finish["inputs"]["strength"] == 1.0
            assert "mask" not in finish["inputs"]
            round_trip = prompt[finish["inputs"]["source_round_trip"][0]]
            assert round_trip["class_type"] == "VAEDecode"
            assert prompt[round_trip["inputs"]["samples"][0]]["inputs"]["pixels"] == degraded


def test_finish_pastes_the_model_into_the_holes_and_keeps_the_known_pixels():
    bench = _load_bench()
    source, output = torch.rand(2, 32, 32, 3), torch.rand(2, 32, 32, 3)
    mask = torch.zeros(2, 32, 32)
    mask[0, 10:14, 5:9] = 1
    mask[1, 20, 20] = 1
    out = bench.Translator.finish(None, "inpaint", source, output, mask)  # inpainting needs no autoencoder
    holes = mask > 0.5
    assert torch.equal(out[holes], output[holes]) and torch.equal(out[~holes], source[~holes])


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    """A tiny random VIDiff model, random TAESD weights in the host layout, a random 32-wide text encoder
    (with its tokenizer) and two short validation clips."""
    from diffusers import AutoencoderTiny
    from safetensors.torch import save_file

    from vidiff_model import VIDiffModel, tiny_config
    from vidiff_model.checkpoints.native import save_vidiff
    from vidiff_model.mini.autoencoder import to_taesd_state
    from vidiff_model.training.demo import make_encoders

    root = tmp_path_factory.mktemp("mini_eval")
    torch.manual_seed(0)
    save_vidiff(VIDiffModel(tiny_config(image_instruction=False, cross_attention_dim=32)), root / "vidiff.safetensors")
    save_file(to_taesd_state(AutoencoderTiny(), 1.0, 0.0), str(root / "taesd.safetensors"))
    make_encoders(root / "enc", text_width=32)
    (root / "val").mkdir()
    for i in range(2):
        clip = smooth_scene(frames=7, size=72)[:, i:i + 64, :64]
        np.save(root / "val" / f"clip{i}.npy", (clip.numpy() * 255).round().astype(np.uint8))
    return root


def test_quality_command_end_to_end_on_a_tiny_random_model(tiny_files):
    r = tiny_files
    bench = _load_bench()
    threads = torch.get_num_threads()
    start = time.process_time()  # CPU time (see test_styles_are_fast_on_small_frames)
    try:  # one thread: two would fight a busy 2-core machine's other jobs (and the sizes are tiny)
        report = bench.main([
            "--model", str(r / "vidiff.safetensors"), "--vae", str(r / "taesd.safetensors"),
            "--text-encoder", str(r / "enc" / "text_encoder"), "--tokenizer", str(r / "enc" / "text_encoder"),
            "--val", str(r / "val"), "--out", str(r / "out"), "--docs", str(r / "docs"),
            "--clips", "2", "--frames", "4", "--size", "64", "--steps", "2",
            "--long-frames", "10", "--long-clip", "4", "--long-overlap", "1", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    took = time.process_time() - start
    assert took < 60, f"{took:.0f} s of CPU"
    md = (r / "out" / "quality.md").read_text()
    for task in ("recolor", "dehaze", "deblur", "inpaint"):
        assert f"### {task}:" in md
        rows = report["restoration"][task]["mean"]
        assert set(rows) == {"input", "baseline", "model", "finished", "autoencoder", "target"}
        assert all(math.isfinite(rows[k]["psnr"]) for k in ("input", "baseline", "model", "finished", "autoencoder"))
        assert rows["finished"]["psnr"] != rows["model"]["psnr"]  # the templates' finish changes the output
        assert (r / "docs" / f"mini_{task}.png").is_file()
    assert "Colorfulness" in md and "dark channel prior" in md and "Telea" in md
    assert "Colorfulness" not in md.split("### dehaze")[1].split("###")[0]
    st = report["styles"]
    assert set(st["mean_l1"]) == set(STYLES) and st["pairs"] == 2 * len(STYLES)
    assert 0 <= st["own_closest_all"] <= 1 and "own target closest" in md
    # How far apart the targets are, and whether the autoencoder could carry each one (the model's ceiling).
    gaps = st["target_l1"]
    assert all(gaps[s][s] == 0 for s in STYLES) and gaps["sepia"]["sketch"] == pytest.approx(gaps["sketch"]["sepia"])
    assert min(gaps[s][t] for s in STYLES for t in STYLES if s != t) > 0.01
    assert set(st["round_trip_own_closest"]) == set(STYLES) and "autoencoder round trip" in md
    lv = report["long_video"]
    assert lv["frames"] == 10 and lv["clips"] == 3 and math.isfinite(lv["seam_ratio"])  # 7-frame clips, looped
    assert math.isfinite(lv["finished_seam_ratio"]) and lv["finished_psnr"] != lv["psnr"]
    assert lv["given_frame_error"] > 0 and lv["latent_frame_change"] > 0 and "continue from" in md  # random weights
    assert lv["videos"] == 1 and list(lv["per_clip"]) == ["clip0"]  # no clip has 10 frames: the longest, looped
    assert "Seam ratio" in md and (r / "docs" / "mini_long_video.png").is_file()
    saved = json.loads((r / "out" / "quality.json").read_text())
    assert saved["settings"]["clips"] == 2 and saved["settings"]["frames"] == 4
    from PIL import Image

    with Image.open(r / "docs" / "mini_dehaze.png") as im:
        assert im.size == (4 * 64, 3 * 64)  # input | output | output as finished | target × 3 frames
    with Image.open(r / "docs" / "mini_style_sepia.png") as im:
        assert im.size == (3 * 64, 3 * 64)  # input | output | target × 3 frames
