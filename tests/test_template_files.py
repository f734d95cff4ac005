"""The templates as files, without a server: every template the browser offers has its card; the vidiff-mini
templates are offered or kept in workflows/experimental/ as their measured check says; the full-size templates
carry the frontend's missing-model metadata; and the client's graph edits (own footage, missing files)."""

from __future__ import annotations

import json

import pytest
from comfy_harness import API_ALL, EXPERIMENTAL, ROOT, UI, UI_ALL

from vidiff_model.remote.errors import UsageError
from vidiff_model.remote.model_files import SOURCES, check_files, missing_files
from vidiff_model.remote.own_footage import MINI_SIDE, use_own_video
from vidiff_model.remote.workflow import _is_link, resolve_workflow

CARDS = json.loads((ROOT / "bench" / "results" / "template_cards.json").read_text())["templates"]
MINI = sorted(k for k in API_ALL if k.startswith("mini_"))


@pytest.mark.parametrize("name", sorted(UI))
def test_every_offered_template_has_a_card(name):
    from PIL import Image

    card = ROOT / "workflows" / f"{name}.jpg"  # what GET /api/workflow_templates/<pack>/<name>.jpg serves
    assert card.is_file(), f"{card.name} missing: .venv/bin/python scripts/make_template_cards.py"
    with Image.open(card) as im:
        assert im.format == "JPEG" and im.width >= 320 and im.height >= 160, (im.format, im.size)
    assert card.stat().st_size < 200_000


def test_offered_mini_templates_follow_their_measured_check():
    assert set(CARDS) == set(MINI), "every mini template is measured (scripts/make_template_cards.py)"
    for name, record in CARDS.items():
        offered = (ROOT / "workflows" / f"vidiff_{name}.json").is_file()
        assert offered == record["offered"], (name, record)
        assert offered != (EXPERIMENTAL / f"vidiff_{name}.json").is_file(), f"{name}: in exactly one place"
        assert offered != (EXPERIMENTAL / "api" / f"{name}.json").is_file()
        margin = record["result"]["psnr"] - record["input"]["psnr"]
        assert record["offered"] == (margin >= 1.0 and record["result"]["ssim"] > record["input"]["ssim"]), record
    assert any(r["offered"] for r in CARDS.values()), "the browser offers at least one template that runs on a CPU"
    for style in ("mini_style_sketch", "mini_style_watercolor", "mini_style_sepia", "mini_style_cartoon"):
        assert f"vidiff_{style}" in UI_ALL


@pytest.mark.parametrize("name", sorted(k for k in UI_ALL if not k.startswith("vidiff_mini")))
def test_full_size_templates_name_their_files_for_the_missing_models_dialog(name):
    listed = {}
    for node in UI_ALL[name]["nodes"]:
        for model in node["properties"].get("models", []):
            assert model["name"] in node["widgets_values"], (node["type"], model)  # the frontend matches on it
            source = SOURCES[model["name"]]
            assert model["url"] == source.url and model["url"].startswith("https://"), model
            if source.make:  # built, not downloaded: the link is the page on building it
                assert model["url"].startswith("https://github.com/") and "#build-a-vidiff-file" in model["url"]
            listed[model["name"]] = model["directory"]
    api = API_ALL[name.removeprefix("vidiff_")]
    files = {v for n in api.values() for k, v in n["inputs"].items() if isinstance(v, str) and v in SOURCES}
    assert files, name
    for file in files:  # every downloadable file the workflow loads is listed, in its folder
        if SOURCES[file].url:
            assert listed.get(file) == SOURCES[file].directory, (name, file, listed)


def _check_links(prompt: dict) -> None:
    for node_id, node in prompt.items():
        for name, value in node["inputs"].items():
            if _is_link(value):
                assert value[0] in prompt, f"node {node_id} {name} links to a removed node {value[0]}"


def test_own_video_replaces_the_sample_clip_and_keeps_the_finish():
    prompt = use_own_video(API_ALL["mini_dehaze"], "mini_dehaze", "my.mp4")
    kinds = [n["class_type"] for n in prompt.values()]
    assert "VIDiffLoadSampleClip" not in kinds and "VIDiffDegradeVideo" not in kinds  # the footage is the hazy input
    assert "VIDiffVideoMetrics" not in kinds  # no clean reference, no PSNR against one
    assert {"LoadVideo", "GetVideoComponents", "ImageScale", "ImageFromBatch", "VIDiffDetailTransfer"} <= set(kinds)
    _check_links(prompt)
    scale = next(n for n in prompt.values() if n["class_type"] == "ImageScale")["inputs"]
    assert (scale["width"], scale["height"], scale["crop"]) == (MINI_SIDE, MINI_SIDE, "center")
    assert next(n for n in prompt.values() if n["class_type"] == "ImageFromBatch")["inputs"]["length"] == 16
    sampler = next(n for n in prompt.values() if n["class_type"] == "VIDiffSampler")["inputs"]
    original = next(n for n in API_ALL["mini_dehaze"].values() if n["class_type"] == "VIDiffSampler")["inputs"]
    assert sampler == original  # steps, guidance, seed: the template's own
    fps = [n["inputs"]["fps"] for n in prompt.values() if n["class_type"] == "SaveAnimatedWEBP"]
    get = next(k for k, n in prompt.items() if n["class_type"] == "GetVideoComponents")
    assert fps and all(f == [get, 2] for f in fps)  # your video's frame rate


def test_own_video_keeps_gray_conversion_and_holes_and_every_frame_of_long_video():
    for name, kept in (("mini_recolor", "grayscale"), ("mini_inpaint", "holes"), ("mini_long_video", "grayscale")):
        prompt = use_own_video(API_ALL[name], name, "my.mp4")
        _check_links(prompt)
        degrade = [n["inputs"]["degradation"] for n in prompt.values() if n["class_type"] == "VIDiffDegradeVideo"]
        assert degrade == [kept], name
        assert "VIDiffVideoMetrics" not in [n["class_type"] for n in prompt.values()]
    long_video = use_own_video(API_ALL["mini_long_video"], "mini_long_video", "my.mp4")
    assert "ImageFromBatch" not in [n["class_type"] for n in long_video.values()]  # frames 0: the whole video


def test_own_video_refuses_a_workflow_without_the_sample_clip():
    with pytest.raises(UsageError, match="expected one VIDiffLoadSampleClip"):
        use_own_video(API_ALL["dehaze"], "dehaze", "my.mp4")


def test_missing_files_are_named_all_at_once_with_folder_and_source():
    prompt = API_ALL["style_image"]
    empty = lambda kind, name: []  # noqa: E731  a server that lists no file at all
    lines = missing_files(prompt, empty)
    text = "\n".join(lines)
    for file, folder in (("clip_l.safetensors", "text_encoders"), ("vae-ft-mse-840000-ema-pruned.safetensors", "vae"),
                         ("clip-vit-large-patch14.safetensors", "clip_vision"), ("vidiff_sd15.safetensors", "vidiff")):
        assert f"models/{folder}/{file}" in text, text
    assert "https://huggingface.co/comfyanonymous/flux_text_encoders" in text
    assert "made, not downloaded: python -m vidiff_model build" in text  # the VIDiff file is built, not fetched
    assert "input/vidiff_style.png" in text and "input/vidiff_example.mp4" in text
    with pytest.raises(UsageError) as e:
        check_files(prompt, empty, "workflows/api/style_image.json")
    assert str(e.value).count("\n  ") == len(lines) == 6
    video = next(k for k, n in prompt.items() if n["class_type"] == "LoadVideo")
    assert len(missing_files(prompt, empty, ignore={video})) == 5  # the --video slot is filled by the upload
    everything = lambda kind, name: list(SOURCES) + ["vidiff_style.png", "vidiff_example.mp4"]  # noqa: E731
    assert missing_files(prompt, everything) == []


def test_a_template_name_finds_its_workflow():
    assert resolve_workflow("mini_dehaze") == ROOT / "workflows" / "api" / "mini_dehaze.json"
    assert resolve_workflow("vidiff_dehaze") == ROOT / "workflows" / "api" / "dehaze.json"
    assert resolve_workflow("mini_style_sketch") == EXPERIMENTAL / "api" / "mini_style_sketch.json"
    assert str(resolve_workflow("nothing_like_it")) == "nothing_like_it"  # the loader then says no such file
