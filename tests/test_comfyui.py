"""The pack inside a real ComfyUI 0.3.75 server (own process, 127.0.0.1), through its HTTP API and
websocket, with the host's own loaders, VAE, CLIP and save nodes, on fixture weights."""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from comfy_harness import API, FPS, FRAMES, HEIGHT, MODEL_FILES, UI, UI_ALL, UI_PLAIN, WIDTH, ComfyServer, video_info, webp_info, write_video

pytestmark = pytest.mark.comfyui


def _fast(prompt: dict, steps: int = 2) -> dict:
    """A copy with few steps and, for long videos, short clips (10 frames -> 3 clips of 4 sharing 1)."""
    prompt = copy.deepcopy(prompt)
    for node in prompt.values():
        if node["class_type"] == "VIDiffSampler":
            node["inputs"]["steps"] = steps
        if node["class_type"] == "VIDiffLongVideo":
            node["inputs"].update(clip_length=4, overlap=1)
    return prompt


def _node(prompt: dict, class_type: str) -> dict:
    return next(n for n in prompt.values() if n["class_type"] == class_type)


def _loader_prompt(model_name: str) -> dict:
    """The style-image template (Load VIDiff Model) with a text instruction only."""
    prompt = _fast(API["style_image"])
    _node(prompt, "VIDiffInstructionEncode")["inputs"].pop("image_instruction")
    _node(prompt, "VIDiffModelLoader")["inputs"]["model_name"] = model_name
    return prompt


def _outputs(server: ComfyServer, history: dict) -> list[Path]:
    files = []
    for out in history["outputs"].values():
        for item in out.get("images", []) + out.get("videos", []):
            files.append(server.workdir / "output" / item.get("subfolder", "") / item["filename"])
    return files


def test_startup_log_has_no_traceback_and_every_host_node_imports(server):
    """The session server's start (everything logged before "Starting server") is clean: no traceback, no
    "IMPORT FAILED" / "Cannot import" of the host's own nodes (its audio nodes need torchaudio, which
    scripts/setup_venv.sh installs) nor of the pack. Later lines are left out: bad-input tests log tracebacks."""
    log = server.log_text()
    assert "Starting server" in log, log[-3000:]
    startup = log.split("Starting server", 1)[0]
    for marker in ("Traceback", "IMPORT FAILED", "Cannot import"):
        assert marker not in startup, f"{marker!r} in the startup log:\n{startup[-6000:]}"
    info = server.get("/object_info")
    assert {"LoadAudio", "SaveAudio", "AudioEncoderEncode"} <= set(info)  # comfy_extras/nodes_audio*.py


def test_nodes_are_listed_with_tooltips_and_categories(server):
    info = server.get("/object_info")
    ids = ["VIDiffModelLoader", "VIDiffModelFromParts", "VIDiffInstructionEncode", "VIDiffSampler", "VIDiffLongVideo",
           "VIDiffCutHoles", "VIDiffMaskFromSegmentation", "VIDiffVideoMetrics", "VIDiffLoadSampleClip",
           "VIDiffDegradeVideo", "VIDiffDetailTransfer", "VIDiffKeepLuminance", "VIDiffApplyMotionModule",
           "VIDiffGuider", "VIDiffNoise", "VIDiffLoadVideo", "VIDiffContinueFrom"]
    for node_id in ids:
        node = info[node_id]
        assert node["category"].startswith("VIDiff/"), node_id
        for section in ("required", "optional"):
            for name, spec in node["input"].get(section, {}).items():
                assert spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"
        assert all(node["output_tooltips"]), node_id
    assert MODEL_FILES["vidiff"] in info["VIDiffModelLoader"]["input"]["required"]["model_name"][1]["options"]
    motion = info["VIDiffApplyMotionModule"]["input"]["required"]["motion_module"][1]["options"]
    assert MODEL_FILES["animatediff_models"] in motion
    # every node that takes a VIDiff model takes the host's MODEL; the retired FromParts is hidden, still runs
    for node_id in ("VIDiffSampler", "VIDiffInstructionEncode", "VIDiffGuider", "VIDiffApplyMotionModule"):
        assert info[node_id]["input"]["required"]["model"][0] == "MODEL", node_id
    for node_id in ("VIDiffModelLoader", "VIDiffModelFromParts", "VIDiffApplyMotionModule"):
        assert info[node_id]["output"] == ["MODEL"], node_id
    assert not any("VIDIFF_MODEL" in json.dumps(node) for node in info.values())
    assert info["VIDiffModelFromParts"]["deprecated"] and not info["VIDiffApplyMotionModule"]["deprecated"]
    samplers = info["VIDiffSampler"]["input"]["required"]["sampler_name"][1]["options"]
    assert {"euler", "euler_ancestral", "ddim", "dpmpp_2m", "uni_pc"} <= set(samplers)
    for node_id in ("VIDiffModelLoader", "VIDiffModelFromParts", "VIDiffApplyMotionModule"):  # optional inputs
        schedule = info[node_id]["input"]["optional"]["beta_schedule"]
        assert schedule[1]["options"] == ["autoselect", "sd15", "animatediff"] and schedule[1]["default"] == "autoselect"
        assert all(w in schedule[1]["tooltip"] for w in ("scaled_linear", "sqrt_linear", "AnimateDiff")), node_id
    templates = server.get("/workflow_templates")
    assert sorted(templates["ComfyUI-VIDiff"]) == sorted(UI)  # the UI workflows are in the template browser


@pytest.mark.parametrize("task", sorted(API))
def test_api_workflow_runs_and_saves_the_video(server, task):
    result = server.run(_fast(API[task]), timeout=900)
    assert result["status"] == "success", result.get("error") or server.log_text()[-3000:]
    files = _outputs(server, result["history"])
    assert files and all(f.is_file() for f in files)
    for f in files:
        if f.suffix == ".webp":
            frames, width, height, durations = webp_info(f)
            assert (frames, width, height) == (FRAMES, WIDTH, HEIGHT)
            assert durations == [1000 // FPS] * FRAMES
        else:
            assert video_info(f) == (FRAMES, WIDTH, HEIGHT, FPS), f
    progress = [m for m in result["messages"] if m["type"] == "vidiff.progress"]
    clips = 3 if task == "long_video" else 1
    samplers = sum(n["class_type"] == "VIDiffSampler" for n in API[task].values())
    assert [(m["data"]["clip"], m["data"]["step"]) for m in progress] == \
        [(c, s) for _ in range(samplers) for c in range(1, clips + 1) for s in (1, 2)]
    scored = {}
    for node_id, node in API[task].items():  # metrics nodes (compare_guidance): the figures reach the UI
        if node["class_type"] == "VIDiffVideoMetrics":
            lines = dict(line.split(None, 1) for line in result["history"]["outputs"][node_id]["text"][0].splitlines())
            scored[node["_meta"]["title"]] = float(lines["psnr"])
    if task == "compare_guidance":
        assert len(scored) == 2 and len(files) == 2 and len(set(scored.values())) == 2, scored


def test_every_host_sampler_and_scheduler_runs(server):
    info = server.get("/object_info")["VIDiffSampler"]["input"]["required"]
    base = _loader_prompt(MODEL_FILES["vidiff"])  # the tiny VIDiff file: ~45 runs
    failures = {}
    for sampler in info["sampler_name"][1]["options"]:
        prompt = copy.deepcopy(base)
        _node(prompt, "VIDiffSampler")["inputs"].update(sampler_name=sampler, scheduler="karras")
        result = server.run(prompt, timeout=300)
        if result["status"] != "success":
            failures[sampler] = result.get("error", {}).get("exception_message")
    for scheduler in info["scheduler"][1]["options"]:
        prompt = copy.deepcopy(base)
        _node(prompt, "VIDiffSampler")["inputs"].update(scheduler=scheduler)
        result = server.run(prompt, timeout=300)
        if result["status"] != "success":
            failures[scheduler] = result.get("error", {}).get("exception_message")
    assert not failures, json.dumps(failures, indent=1)


@pytest.mark.parametrize("name", sorted(UI_PLAIN))
def test_ui_workflow_matches_object_info(server, name):
    check_ui_workflow_matches_object_info(server, name)


def check_ui_workflow_matches_object_info(server, name: str) -> None:
    """Node types, inputs, widget values and typed links of a UI workflow as the server lists them."""
    info = server.get("/object_info")
    wf = UI_ALL[name]
    nodes = {n["id"]: n for n in wf["nodes"]}
    for node in wf["nodes"]:
        if node["type"] == "Note":  # the frontend's own text note (what the template needs): no server node
            assert node["widgets_values"][0] and not node["inputs"] and not node["outputs"], node
            continue
        assert node["type"] in info, f"{name}: unknown node type {node['type']}"
        spec = {**info[node["type"]]["input"].get("required", {}), **info[node["type"]]["input"].get("optional", {})}
        for inp in node["inputs"]:
            assert inp["name"] in spec, f"{name}: {node['type']} has no input {inp['name']}"
        widget_names = [k for k, v in spec.items() if isinstance(v[0], list) or v[0] in
                        ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")]
        # a control_after_generate widget follows each seed, as the frontend adds one (also to INTs named seed)
        extra = sum(1 for k in widget_names if (spec[k][1] if len(spec[k]) > 1 else {}).get(
            "control_after_generate", k in ("seed", "noise_seed")))
        if isinstance(node["widgets_values"], dict):  # VideoHelperSuite's nodes save theirs by name (workflow_ui.py)
            assert node["type"].startswith("VHS_") and set(widget_names) <= set(node["widgets_values"]), node
            continue
        assert len(node["widgets_values"]) == len(widget_names) + extra, f"{name}: {node['type']} widget values"
    for link_id, src, src_slot, dst, dst_slot, link_type in wf["links"]:
        out_type = info[nodes[src]["type"]]["output"][src_slot]
        dst_input = nodes[dst]["inputs"][dst_slot]
        in_spec = {**info[nodes[dst]["type"]]["input"].get("required", {}),
                   **info[nodes[dst]["type"]]["input"].get("optional", {})}[dst_input["name"]]
        in_type = "COMBO" if isinstance(in_spec[0], list) else in_spec[0]
        assert link_type == out_type == in_type, f"{name}: link {link_id} {out_type} -> {dst_input['name']} ({in_type})"
        assert dst_input["link"] == link_id


def test_interrupt_stops_within_one_step_and_the_next_prompt_runs(server):
    prompt = _fast(API["style_text"], steps=400)
    _node(prompt, "SaveVideo")["inputs"]["filename_prefix"] = "VIDiff/interrupted"
    seen = {"at": None, "after": 0}
    lock = threading.Lock()

    def on_message(srv, msg):
        if msg["type"] != "vidiff.progress":
            return
        with lock:
            if seen["at"] is None and msg["data"]["step"] >= 3:
                seen["at"] = msg["data"]["step"]
                srv.post("/interrupt", {})
            elif seen["at"] is not None:
                seen["after"] += 1

    result = server.run(prompt, timeout=600, on_message=on_message)
    assert result["status"] == "interrupted"
    assert seen["after"] <= 1  # at most the step already under way finished
    assert not list((server.workdir / "output").rglob("interrupted*"))  # nothing half-written
    assert server.run(_fast(API["recolor"]))["status"] == "success"


def _expect_error(server, prompt, *needles, rejected=False):
    result = server.run(prompt, timeout=600)
    if rejected:
        assert result["status"] == "rejected", result
        text = json.dumps(result["error"])
    else:
        assert result["status"] == "error", result["status"]
        text = result["error"]["exception_message"]
        assert result["error"]["exception_type"].endswith(("VIDiffError", "CheckpointError", "LatentError",
                                                           "InstructionError")), result["error"]["exception_type"]
    for needle in needles:
        assert needle in text, text
    assert "\n" not in text.strip() or rejected
    # the server still serves the next valid prompt
    assert server.run(_fast(API["dehaze"]))["status"] == "success"


def test_bad_input_16_channel_latent(server):
    prompt = _fast(API["recolor"])
    prompt["99"] = {"class_type": "EmptySD3LatentImage", "inputs": {"width": WIDTH, "height": HEIGHT, "batch_size": 4}}
    _node(prompt, "VIDiffSampler")["inputs"]["source"] = ["99", 0]
    _expect_error(server, prompt, "source: a 16-channel latent", "SD-1.5")


def test_bad_input_missing_and_corrupt_model_files(server):
    _expect_error(server, _loader_prompt("not_there.safetensors"),
                  "model_name: not_there.safetensors is not in models/vidiff")
    _expect_error(server, _loader_prompt("broken.safetensors"), "broken.safetensors", "truncated or corrupt")


def test_lora_in_the_templates_slot_changes_the_video(server):
    """The recolor template's bypassed LoRA slot, switched on: the host's LoRA loader before VIDiff Apply Motion
    Module changes the result; at strength 0 it is the template's own result."""
    def with_lora(strength: float) -> dict:
        prompt = _fast(API["recolor"], steps=1)
        motion = _node(prompt, "VIDiffApplyMotionModule")
        prompt["99"] = {"class_type": "LoraLoaderModelOnly", "inputs": {
            "model": motion["inputs"]["model"], "lora_name": MODEL_FILES["loras"], "strength_model": strength}}
        motion["inputs"]["model"] = ["99", 0]
        _node(prompt, "SaveVideo")["inputs"]["filename_prefix"] = f"VIDiff/lora_{strength}"
        result = server.run(prompt)
        assert result["status"] == "success", result.get("error")
        return result

    import av

    def frames(result) -> np.ndarray:
        with av.open(str(_outputs(server, result["history"])[0])) as c:
            return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(np.float32)

    plain = _fast(API["recolor"], steps=1)
    _node(plain, "SaveVideo")["inputs"]["filename_prefix"] = "VIDiff/lora_none"
    base = frames(server.run(plain))
    assert np.abs(frames(with_lora(0.0)) - base).mean() < 0.5  # same video (up to the codec)
    assert np.abs(frames(with_lora(1.0)) - base).mean() > 2.0  # the LoRA reached the spatial layers


def test_bad_input_overlap_not_less_than_clip_length(server):
    prompt = _fast(API["long_video"])
    _node(prompt, "VIDiffLongVideo")["inputs"].update(clip_length=4, overlap=4)
    _expect_error(server, prompt, "overlap: 4 frames is not less than clip_length (4)", rejected=True)


def test_bad_input_image_instruction_without_image_mlp(server):
    prompt = _fast(API["style_image"])
    _node(prompt, "VIDiffModelLoader")["inputs"]["model_name"] = "vidiff_text_only.safetensors"
    _expect_error(server, prompt, "image_instruction: this model has no image-instruction MLP")


def test_bad_input_instruction_over_77_tokens(server):
    prompt = _fast(API["recolor"])
    _node(prompt, "VIDiffInstructionEncode")["inputs"]["instruction"] = "please recolor this clip " * 30
    _expect_error(server, prompt, "instruction: got 154 text tokens", "exactly 77")


def test_bad_input_too_many_frames_without_long_video_settings(server, tmp_path):
    write_video(server.workdir / "input" / "long.mp4", 40, 32, 32, FPS)
    prompt = _fast(API["recolor"])
    _node(prompt, "LoadVideo")["inputs"]["file"] = "long.mp4"
    _expect_error(server, prompt, "source: 40 frames is more than one clip", "VIDiffLongVideo")


def test_bad_input_video_with_zero_frames(server):
    """The host's LoadVideo refuses a video without frames at validation, naming the input; VIDiff's own
    check (`source: the video has 0 frames`) guards LATENTs from elsewhere."""
    import av

    with av.open(str(server.workdir / "input" / "zero.mp4"), "w") as c:
        stream = c.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    prompt = _fast(API["recolor"])
    _node(prompt, "LoadVideo")["inputs"]["file"] = "zero.mp4"
    _expect_error(server, prompt, "file - Invalid video file: zero.mp4", rejected=True)


def test_size_not_divisible_by_8_is_cropped_by_the_host_vae(server):
    """The host's VAEEncode centre-crops frames to multiples of 8 before VIDiff sees them (host behaviour,
    documented in the README): a 60x44 video comes back 56x40, every frame kept."""
    write_video(server.workdir / "input" / "odd.mp4", 6, 60, 44, FPS)
    prompt = _fast(API["recolor"])
    _node(prompt, "LoadVideo")["inputs"]["file"] = "odd.mp4"
    result = server.run(prompt)
    assert result["status"] == "success"
    assert video_info(_outputs(server, result["history"])[0]) == (6, 56, 40, FPS)


def test_metrics_node_shows_and_outputs_the_figures(server):
    prompt = {
        "1": {"class_type": "LoadVideo", "inputs": {"file": "vidiff_example.mp4"}},
        "2": {"class_type": "GetVideoComponents", "inputs": {"video": ["1", 0]}},
        "3": {"class_type": "VIDiffVideoMetrics", "inputs": {"prediction": ["2", 0], "reference": ["2", 0],
                                                             "warping_error": True}},
    }
    result = server.run(prompt)
    assert result["status"] == "success", result.get("error")
    text = result["history"]["outputs"]["3"]["text"][0]
    lines = dict(line.split(None, 1) for line in text.splitlines())
    assert lines["psnr"] == "inf" and float(lines["ssim"]) == 1.0 and float(lines["frames"]) == FRAMES
    assert float(lines["colorfulness"]) > 0 and float(lines["warping_error"]) >= 0
    prompt["3"]["inputs"]["reference"] = ["4", 0]
    prompt["4"] = {"class_type": "ImageFromBatch", "inputs": {"image": ["2", 0], "batch_index": 0, "length": 3}}
    result = server.run(prompt)
    assert result["status"] == "error"
    assert "reference: 3 frames but the prediction has 10" in result["error"]["exception_message"]


def test_metrics_node_computes_lpips_and_fid_from_models_folder(server):
    import shutil

    from metric_fixtures import lpips_heads_file, save_alexnet, save_inception

    folder = server.workdir / "models" / "vidiff_metrics"
    folder.mkdir(parents=True, exist_ok=True)
    save_alexnet(folder / "alexnet-owt-7be5be79.pth")
    shutil.copy(lpips_heads_file(), folder / "alex.pth")
    save_inception(folder / "inception_v3_google-0cc3c7bd.pth")
    options = server.get("/object_info/VIDiffVideoMetrics")["VIDiffVideoMetrics"]["input"]["optional"]
    assert {"alex.pth", "alexnet-owt-7be5be79.pth"} <= set(options["lpips_alexnet"][1]["options"])
    prompt = {
        "1": {"class_type": "LoadVideo", "inputs": {"file": "vidiff_example.mp4"}},
        "2": {"class_type": "GetVideoComponents", "inputs": {"video": ["1", 0]}},
        "4": {"class_type": "ImageBlur", "inputs": {"image": ["2", 0], "blur_radius": 3, "sigma": 2.0}},
        "3": {"class_type": "VIDiffVideoMetrics", "inputs": {
            "prediction": ["2", 0], "reference": ["2", 0], "warping_error": False,
            "lpips_alexnet": "alexnet-owt-7be5be79.pth", "lpips_heads": "alex.pth",
            "fid_inception": "inception_v3_google-0cc3c7bd.pth"}},
    }
    figures = lambda r: dict(line.split(None, 1) for line in r["history"]["outputs"]["3"]["text"][0].splitlines())
    same = server.run(prompt)
    assert same["status"] == "success", same.get("error")
    assert abs(float(figures(same)["lpips"])) < 1e-6 and abs(float(figures(same)["fid"])) < 1e-3
    prompt["3"]["inputs"]["prediction"] = ["4", 0]  # a blurred prediction is further from the reference
    blurred = server.run(prompt)
    assert blurred["status"] == "success", blurred.get("error")
    assert float(figures(blurred)["lpips"]) > 1e-4 and float(figures(blurred)["fid"]) > 1e-3
    prompt["3"]["inputs"]["lpips_heads"] = "none"
    half = server.run(prompt)
    assert half["status"] == "error"
    assert half["error"]["exception_message"].startswith("lpips_heads: LPIPS needs both")
    prompt["3"]["inputs"].update(lpips_heads="alex.pth", lpips_alexnet="alex.pth")  # the heads as a backbone
    wrong = server.run(prompt)
    assert wrong["status"] == "error" and "alex.pth: not torchvision AlexNet weights" in wrong["error"]["exception_message"]


def test_a_trained_checkpoint_runs_in_the_loader_node(server, tmp_path):
    """Train the tiny model for a few steps (CLIP-L-wide text, like the host's CLIP) and run a workflow on the
    result through VIDiffModelLoader."""
    import yaml

    from vidiff_model.training.config import load_config
    from vidiff_model.training.demo import TINY_CONFIG, make_dataset, make_encoders
    from vidiff_model.training.trainer import train

    make_dataset(tmp_path / "data")
    make_encoders(tmp_path / "encoders", text_width=768, image_width=768)
    raw = yaml.safe_load(TINY_CONFIG.format(steps=3))
    raw.update(save_every=3, validation={"samples": 0}, output_dir=str(tmp_path / "run"))
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(raw))
    from accelerate.state import AcceleratorState, PartialState

    AcceleratorState._reset_state(True)  # accelerate keeps one state per process; other tests may have made one
    PartialState._reset_state()
    trained = train(load_config(tmp_path / "train.yaml"))
    target = server.workdir / "models" / "vidiff" / "trained_tiny.safetensors"
    target.write_bytes(trained.read_bytes())
    result = server.run(_loader_prompt(target.name), timeout=600)
    assert result["status"] == "success", result.get("error") or server.log_text()[-3000:]
    (video,) = _outputs(server, result["history"])
    assert video_info(video) == (FRAMES, WIDTH, HEIGHT, FPS)
