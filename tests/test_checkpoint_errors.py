"""Wrong, corrupt and unsafe files get a one-line error naming the file and what it looks like."""

import pickle

import pytest
import torch
from fixture_files import (clip_l_text_shapes, clip_vision_vit_l_shapes, ldm_checkpoint_tensors, ldm_unet_shapes,
                           motion_module_tensors, random_tensors, save_tensors, sd_vae_shapes,
                           sdxl_checkpoint_tensors, truncate_file)

from vidiff_model import CheckpointError, build_vidiff_from_parts, identify, load_vidiff
from vidiff_model.checkpoints import TensorFile


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("wrong_files")
    meta = dict(device="meta")
    ip2p_meta = ldm_checkpoint_tensors(ldm_unet_shapes(in_channels=8), **meta)
    out = {
        # real full-size SD-1.5 layouts, but only shapes matter for detection: write small stand-ins lazily below
        "sdxl": save_tensors(d / "sd_xl_base_1.0.safetensors", sdxl_checkpoint_tensors(with_token_embeddings=False)),
        "vae": save_tensors(d / "vae-ft-mse-840000-ema-pruned.safetensors", random_tensors(sd_vae_shapes())),
        "mm_sdxl": save_tensors(d / "mm_sdxl_v10_beta.ckpt", motion_module_tensors("sdxl", block_out_channels=(32, 64, 128))),
        "mm_v2": save_tensors(d / "mm_sd_v15_v2.safetensors", motion_module_tensors("v2", block_out_channels=(32, 64, 128, 128))),
        "clip_vision": save_tensors(d / "clip_vision_vit_l.safetensors",
                                    random_tensors(dict(list(clip_vision_vit_l_shapes().items())[:8]))),
        "clip_text": save_tensors(d / "clip_l.safetensors", random_tensors(
            {"text_model." + k if not k.startswith("text_model.") else k: s
             for k, s in list(clip_l_text_shapes().items())[:6]})),
    }
    out["ip2p_shapes"] = {k: tuple(v.shape) for k, v in ip2p_meta.items()}
    return out


def test_identify_real_layouts(files):
    assert identify(files["ip2p_shapes"]).kind == "ip2p"
    sd15 = {k: tuple(v.shape) for k, v in ldm_checkpoint_tensors(ldm_unet_shapes(), device="meta").items()}
    assert identify(sd15).kind == "sd15"
    bare = {k.removeprefix("model.diffusion_model."): s for k, s in sd15.items()}
    assert identify(bare).kind == "sd15" and "UNet-only" in identify(bare).description
    inpaint = {k: tuple(v.shape) for k, v in ldm_checkpoint_tensors(ldm_unet_shapes(in_channels=9), device="meta").items()}
    assert "inpainting" in identify(inpaint).description
    sd2 = {k: tuple(v.shape) for k, v in ldm_checkpoint_tensors(ldm_unet_shapes(context_dim=1024, linear_proj=True), device="meta").items()}
    assert identify(sd2).kind == "sd2"
    for version in ("v1", "v2", "v3"):
        shapes = {k: tuple(v.shape) for k, v in motion_module_tensors(version, device="meta").items()}
        assert identify(shapes).kind == "motion_module" and identify(shapes).motion_version == version
    for name, kind in [("sdxl", "sdxl"), ("vae", "vae"), ("mm_sdxl", "motion_module_sdxl"),
                       ("clip_vision", "clip_vision"), ("clip_text", "clip_text")]:
        tf = TensorFile(files[name])
        assert identify(tf.shapes, tf.metadata).kind == kind, name


@pytest.mark.parametrize("unet, motion, bad, message", [
    ("sdxl", "mm_v2", "sdxl", "expected an InstructPix2Pix or SD-1.5 checkpoint; this file looks like an SDXL checkpoint"),
    ("vae", "mm_v2", "vae", "this file looks like a VAE"),
    ("mm_v2", "mm_v2", "mm_v2", "this file looks like a motion module"),  # a scaled-down v2 layout
])
def test_wrong_unet_file(files, unet, motion, bad, message):
    with pytest.raises(CheckpointError) as e:
        build_vidiff_from_parts(files[unet], files[motion])
    assert str(e.value).startswith(str(files[bad]) + ": ")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_wrong_motion_module_file(files, tmp_path):
    unet = save_tensors(tmp_path / "ip2p.safetensors", ldm_checkpoint_tensors(
        ldm_unet_shapes(in_channels=8, block_out_channels=(32, 64), attention_blocks=(True, False))))
    # the UNet file is checked first, so a tiny UNet needs the matching explicit config
    from vidiff_model import tiny_config
    with pytest.raises(CheckpointError, match=r"mm_sdxl_v10_beta.ckpt: expected an AnimateDiff SD-1.5 motion module .*looks like an AnimateDiff motion module for SDXL"):
        build_vidiff_from_parts(unet, files["mm_sdxl"], unet_config=tiny_config().unet)
    with pytest.raises(CheckpointError, match="vae-ft-mse-840000-ema-pruned.safetensors: .*looks like a VAE"):
        build_vidiff_from_parts(unet, files["vae"], unet_config=tiny_config().unet)


def test_truncated_and_corrupt_files(files, tmp_path):
    broken = truncate_file(files["vae"], 0.5, tmp_path / "vae_half.safetensors")
    with pytest.raises(CheckpointError, match="vae_half.safetensors: not a readable safetensors file; it is truncated or corrupt"):
        TensorFile(broken)
    broken_ckpt = truncate_file(files["mm_sdxl"], 0.5, tmp_path / "mm_half.ckpt")
    with pytest.raises(CheckpointError, match="mm_half.ckpt: not a readable checkpoint; it is truncated or corrupt"):
        TensorFile(broken_ckpt)
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_vidiff(tmp_path / "garbage.safetensors")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.ckpt: not a readable checkpoint"):
        TensorFile(tmp_path / "empty.ckpt")
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="unsupported file type '.onnx'"):
        TensorFile(tmp_path / "model.onnx")


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # would create the marker file if unpickled


def test_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"model.diffusion_model.x": torch.zeros(1)}, "payload": _RunsCode(str(marker))}, path)
    with pytest.raises(CheckpointError, match="evil.ckpt: refused: this pickle holds objects other than tensors"):
        TensorFile(path)
    assert not marker.exists()
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_RunsCode(str(marker))))
    with pytest.raises(CheckpointError, match="raw.pt: (refused|not a readable checkpoint)"):
        TensorFile(raw)
    assert not marker.exists()


def test_plain_ckpt_with_non_tensor_entries_is_read(tmp_path):
    path = tmp_path / "wrapped.ckpt"
    torch.save({"state_dict": {"a": torch.ones(2)}, "global_step": 22000, "epoch": 3}, path)
    tf = TensorFile(path)
    assert tf.keys() == ["a"] and tf.non_tensors["global_step"] == 22000
    torch.save([torch.ones(1)], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="holds a list, not a dictionary of tensors"):
        TensorFile(tmp_path / "list.pt")


def test_legacy_torch_format_is_read(tmp_path):
    """Files saved by torch before 1.6 (not zip) cannot be memory-mapped; they are read whole."""
    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.arange(4.0)}, path, _use_new_zipfile_serialization=False)
    tf = TensorFile(path)
    assert torch.equal(tf.get("w"), torch.arange(4.0))
