"""VIDiff on the host's MODEL (nodes/model_injection.py, nodes/host_guider.py), checked in a real ComfyUI process
(tests/host_checks.py): parity with the library, LoRA, model patches, fp8 storage, the input MODEL left as it
was, and the errors a user can cause. Tiny real-layout fixture files, fp32, 3 Euler steps."""

from __future__ import annotations

import pytest
from host_process import run_host_script

PARITY = 1e-5  # relative L2 of the latents after 3 steps, host path against the library path (fp32)

pytestmark = pytest.mark.comfyui


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    return run_host_script("host_checks.py", tmp_path_factory.mktemp("host"))


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_host_model_with_motion_module_matches_the_library(checks, version):
    """VIDiff Apply Motion Module + VIDiff Guider + VIDiff Noise + SamplerCustomAdvanced on the host's own UNet
    gives the library model's video (v1 with its clip-wide spatial norms, v2 with its mid-block module)."""
    got = checks["parity"][version]
    assert got["rel_l2"] < PARITY, got
    assert got["frames"] == 6
    assert got["attachment"] == [version, "animatediff"]  # the module's version and schedule travel with the MODEL


def test_lora_before_or_after_the_motion_module_equals_the_merged_checkpoint(checks):
    """A kohya-layout LoRA through the host's LoRA loader reaches the spatial layers under their own names, whether
    it is applied before or after the temporal layers."""
    got = checks["lora"]
    assert got["patched_keys"] == 3
    assert got["lora_before_rel_l2"] < PARITY and got["lora_after_rel_l2"] < PARITY, got
    assert got["lora_vs_none_rel"] > 1000 * PARITY, got  # the LoRA does change the video


def test_host_model_patches_are_honoured(checks):
    """FreeU_V2 (an output-block patch) and an attn2 replace patch (what IP-Adapter uses) change the video."""
    got = checks["patches"]
    assert got["freeu_rel"] > 100 * PARITY, got
    assert got["attn2_calls"] == 3, got  # once per step: the three guidance branches run as one batch
    assert got["attn2_rel"] > 10 * PARITY, got


def test_fp8_storage_runs_close_to_fp32(checks):
    got = checks["fp8"]
    assert got["temporal_dtype"] == "torch.float8_e4m3fn"  # the temporal layers are stored as the UNet is
    assert got["finite"]
    assert got["fp8_rel_l2"] < 0.15, got  # random weights rounded to 3 mantissa bits: measured 0.057


def test_input_model_is_unchanged(checks):
    got = checks["input_unchanged"]
    assert got["object_patches"] == 0 and got["attachment"] is None and got["same_keys"], got
    assert got["clone_object_patches"] > 0
    assert got["children_while_clone_loaded"] == ["0", "1", "vidiff_motion"]  # the host applied the clone's patch
    assert got["children_after"] == ["0", "1"], got  # ... and took it back for the input MODEL
    assert "_clip_norm" not in got["norm_forward_after"], got
    assert got["plain_rel_after"] == 0.0, got


@pytest.mark.parametrize("case, needles", [
    ("twice", ["model:", "already has temporal layers", "before any motion module"]),
    ("sd2", ["model:", "1024 wide", "SD-1.5 or InstructPix2Pix"]),
    ("four_channels", ["model:", "4-channel", "InstructPix2Pix checkpoint (8 input channels)"]),
    ("no_layers", ["model:", "no temporal layers", "VIDiff Apply Motion Module"]),
    ("too_many_frames", ["source:", "40 frames", "32 frames", "VIDiff Long Video"]),
    ("not_a_motion_module", ["ip2p.safetensors", "expected an AnimateDiff SD-1.5 motion module"]),
])
def test_bad_input_is_named(checks, case, needles):
    message = checks["errors"][case]
    assert message != "no error", case
    for needle in needles:
        assert needle in message, message
    assert "Traceback" not in message and len(message.splitlines()) == 1


def test_sampler_on_the_model_equals_the_guider_and_the_library(checks):
    """VIDiff Sampler on the host MODEL gives what VIDiff Guider + VIDiff Noise + SamplerCustomAdvanced give, and
    what the library model gives."""
    got = checks["sampler"]
    assert got["sampler_vs_guider"] < PARITY and got["sampler_vs_library"] < PARITY, got


@pytest.mark.parametrize("mode", ["autoregressive", "overlap_guided", "sliding_window"])
def test_48_frame_long_video_on_the_model_matches_the_library(checks, mode):
    """Clips of 16 sharing 4 over 48 frames: seams, continuation and the noise layout are the library's."""
    got = checks["sampler"][f"long_{mode}"]
    assert got["frames"] == 48
    assert got["rel_l2"] < PARITY, got


@pytest.mark.parametrize("name, tokens, v_prediction", [("mini", 77, True), ("image_tokens", 79, False)])
def test_vidiff_checkpoints_load_as_a_host_model(checks, name, tokens, v_prediction):
    """Load VIDiff Model gives a host MODEL equal to the library model: the shipped vidiff-mini (its own size,
    v-prediction) and a checkpoint whose image MLP turns an image instruction into 2 extra tokens."""
    got = checks["vidiff_files"][name]
    assert got["rel_l2"] < PARITY, got
    assert got["tokens"] == [1, tokens, 768] and got["token_rel"] < PARITY, got
    assert got["v_prediction"] is v_prediction


def test_guider_with_samplercustomadvanced_equals_vidiff_sampler_through_the_server(server):
    """In a real ComfyUI, through its HTTP API, with its own loaders and nodes: Load Checkpoint (InstructPix2Pix)
    → VIDiff Apply Motion Module, then VIDiff Sampler, and VIDiff Guider + VIDiff Noise + KSamplerSelect +
    BasicScheduler + SamplerCustomAdvanced, from the same seed: the same latent video (saved by SaveLatent)."""
    from comfy_harness import FRAMES, INPUT_FILES, MODEL_FILES
    from safetensors.torch import load_file

    prompt = {
        "1": {"class_type": "LoadVideo", "inputs": {"file": INPUT_FILES["video"]}},
        "2": {"class_type": "GetVideoComponents", "inputs": {"video": ["1", 0]}},
        "3": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": MODEL_FILES["checkpoints"]}},
        "4": {"class_type": "VIDiffApplyMotionModule", "inputs": {"model": ["3", 0],
                                                                  "motion_module": MODEL_FILES["animatediff_models"]}},
        "5": {"class_type": "VAEEncode", "inputs": {"pixels": ["2", 0], "vae": ["3", 2]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["3", 1],
                                                         "text": "Transform the gray video into color"}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["3", 1], "text": ""}},
        "8": {"class_type": "VIDiffSampler", "inputs": {
            "model": ["4", 0], "instruction": ["6", 0], "source": ["5", 0], "seed": 3, "steps": 2, "video_cfg": 1.5,
            "text_cfg": 7.5, "sampler_name": "euler", "scheduler": "normal", "negative": ["7", 0]}},
        "9": {"class_type": "VIDiffGuider", "inputs": {"model": ["4", 0], "instruction": ["6", 0], "source": ["5", 0],
                                                       "video_cfg": 1.5, "text_cfg": 7.5, "negative": ["7", 0]}},
        "10": {"class_type": "VIDiffNoise", "inputs": {"noise_seed": 3}},
        "11": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "12": {"class_type": "BasicScheduler", "inputs": {"model": ["4", 0], "scheduler": "normal", "steps": 2,
                                                          "denoise": 1.0}},
        "13": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 48, "batch_size": FRAMES}},
        "14": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["10", 0], "guider": ["9", 0],
                                                                 "sampler": ["11", 0], "sigmas": ["12", 0],
                                                                 "latent_image": ["13", 0]}},
        "15": {"class_type": "SaveLatent", "inputs": {"samples": ["8", 0], "filename_prefix": "host/sampler"}},
        "16": {"class_type": "SaveLatent", "inputs": {"samples": ["14", 0], "filename_prefix": "host/guider"}},
    }
    result = server.run(prompt, timeout=900)
    assert result["status"] == "success", result.get("error") or server.log_text()[-3000:]
    outputs = result["history"]["outputs"]
    latents = {}
    for node in ("15", "16"):
        (item,) = outputs[node]["latents"]
        latents[node] = load_file(server.workdir / "output" / item["subfolder"] / item["filename"])["latent_tensor"]
    assert latents["15"].shape == (FRAMES, 4, 6, 8)
    rel = float((latents["15"] - latents["16"]).norm() / latents["15"].norm())
    assert rel < PARITY, rel


def test_another_packs_modules_in_the_shared_unet_are_not_taken_in(checks):
    """AnimateDiff-Evolved inserts its motion modules into the UNet's blocks while its MODEL is loaded; a VIDiff
    MODEL made meanwhile copies the host's own layers only, under their names (LoRA keys), and samples as without."""
    got = checks["foreign_modules"]
    for version in ("v1", "v2"):
        assert got[version]["foreign_in_clone"] == 0, got
        assert got[version]["names"]["input_blocks.1"][-1] == "vidiff_motion", got
        assert got[version]["rel_l2"] < PARITY, got
    assert got["v2"]["names"]["middle_block"] == ["0", "1", "vidiff_motion", "2"], got
