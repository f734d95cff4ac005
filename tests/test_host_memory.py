"""VIDiff's weights under the host's memory manager (issue 33), checked in a real ComfyUI process
(tests/host_memory_checks.py): every weight and buffer VIDiff adds follows the input's device and dtype when the
host casts weights per call (torch's `meta` device standing for a GPU: no GPU here), a clone of an already loaded
base gets its temporal layers loaded, the memory manager is told their size, and a full-size model sampled through
the host's partial loading gives the fully loaded model's video."""

from __future__ import annotations

import pytest
from host_process import run_host_script

pytestmark = pytest.mark.comfyui
PARITY = 1e-5
MODELS = ["v1", "v2", "v3", "vidiff"]  # AnimateDiff modules on InstructPix2Pix, and a VIDiff checkpoint (image MLP)


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    return run_host_script("host_memory_checks.py", tmp_path_factory.mktemp("host_memory"),
                           ("HOST_MEMORY_CHECKS", "meta,reload,sizes"))


@pytest.mark.parametrize("name", MODELS)
def test_every_weight_follows_an_input_on_another_device(checks, name):
    """The host's partial load with no room (every weight stays on the CPU, cast per call) and the UNet called on
    `meta` input: nothing of VIDiff's stays behind on the CPU (the positional table did, before)."""
    got = checks["meta"][name]
    assert got["device"] == "meta" and got["shape"] == [12, 4, 8, 8], got  # two clips of 6 frames
    assert got["not_cast"] == [], got  # every module with weights was set to cast by the host
    assert got["temporal_cast"] >= 160, got  # 10 temporal layers (11 with v2's mid block) of 16 weight modules
    want = {"temporal": ["meta", "torch.bfloat16"]}
    if name == "v1":  # v1's resnet GroupNorms take the clip's statistics through a patched forward
        want["clip_norm"] = ["meta", "torch.bfloat16"]
    if name == "vidiff":  # the image MLP, and the instruction tokens it makes
        want.update(image_mlp=["meta", "torch.bfloat16"], instruction=["meta", "torch.bfloat16"])
    assert got["alone"] == want  # the layers called alone on bf16 input keep its device and dtype


def test_a_clone_of_a_loaded_base_gets_its_temporal_layers_loaded(checks):
    """Load Checkpoint's MODEL used (fully loaded) before VIDiff Apply Motion Module's clone, or a clone with another
    motion module after it: every weight of the clone is loaded or cast. The control keeps the base's patches_uuid,
    with which the host skips the load and leaves the temporal layers on the offload device."""
    got = checks["reload"]
    assert got["after_base"] == [] and got["after_other_clone"] == [], got
    assert got["control_left_behind"] == got["control_temporal"] >= 160, got


@pytest.mark.parametrize("name", MODELS)
def test_the_memory_manager_is_told_the_temporal_layers_size(checks, name):
    """`model_size` (what the host frees or offloads room for) is the bytes of the UNet with the temporal layers in
    it, plus the image MLP."""
    got, base = checks["sizes"][name], checks["sizes"]["base"]
    assert got["model_size"] == got["patched_tree"] + got["image_mlp"] == got["loaded_model_memory"], got
    assert got["patched_tree"] > 1.3 * base  # the tiny fixture: temporal layers ≈ 0.4-0.5 × its UNet
    assert (got["image_mlp"] > 0) is (name == "vidiff")


def test_clones_loras_and_patches_keep_the_size(checks):
    got = checks["sizes"]
    assert set(got["after"].values()) == {got["v2"]["model_size"]}, got


@pytest.mark.slow
def test_full_size_model_sampled_through_the_hosts_partial_loading(tmp_path):
    """SD-1.5 InstructPix2Pix + a v2 module, full size (random weights, fp32: 5.3 GB), with room for a third of it:
    the host loads what fits and casts the rest per call, temporal layers among them; VIDiff Sampler and VIDiff
    Guider give the fully loaded model's latents. 1-2.5 min (CPU contention) and 8 GB of RAM."""
    got = run_host_script("host_memory_checks.py", tmp_path, ("HOST_MEMORY_CHECKS", "partial"))["partial"]
    assert got["model_size"] > 5e9 and got["loaded"] <= got["budget"], got
    assert got["temporal_offloaded"] > got["temporal_modules"] / 2, got
    assert got["offloaded"] > got["temporal_offloaded"], got  # spatial layers too
    assert got["finite"], got
    assert got["sampler_rel"] < PARITY and got["guider_rel"] < PARITY, got
