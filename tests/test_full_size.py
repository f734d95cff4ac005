"""The full SD-1.5 size: an InstructPix2Pix-layout file (with its VAE and text encoder, as the released
file has them) plus a v2-layout AnimateDiff motion module build the 1.31 B-parameter VIDiff model,
through the command line, and the written VIDiff file loads back."""

import subprocess
import sys

import pytest
import torch
from fixture_files import (ldm_checkpoint_tensors, ldm_unet_shapes, motion_module_tensors, param_count,
                           save_tensors)

from vidiff_model import load_vidiff

pytestmark = pytest.mark.slow
ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def full_size_parts(tmp_path_factory):
    d = tmp_path_factory.mktemp("full_size")
    ip2p = ldm_checkpoint_tensors(ldm_unet_shapes(in_channels=8), with_vae=True, with_text_encoder=True,
                                  with_schedule_buffers=True, dtype=torch.float16)
    unet = save_tensors(d / "instruct-pix2pix-00-22000.safetensors", ip2p)
    probe = {k: ip2p[k].clone() for k in ("model.diffusion_model.input_blocks.0.0.weight",
                                          "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight")}
    del ip2p
    mm = motion_module_tensors("v2", dtype=torch.float16)
    probe["mm"] = mm["down_blocks.2.motion_modules.1.temporal_transformer.proj_in.weight"].clone()
    motion = save_tensors(d / "mm_sd_v15_v2.ckpt", mm)
    del mm
    return d, unet, motion, probe


def _cli(*args):
    out = subprocess.run([sys.executable, "-m", "vidiff_model", *map(str, args)], cwd=ROOT, capture_output=True,
                         text=True, timeout=900)
    return out.returncode, out.stdout + out.stderr


def test_cli_info_identifies_the_parts(full_size_parts):
    _, unet, motion, _ = full_size_parts
    code, text = _cli("info", unet, motion)
    assert code == 0, text
    assert "an InstructPix2Pix (SD-1.5, 8 input channels) UNet (a full single-file checkpoint)" in text
    assert "an AnimateDiff SD-1.5 motion module (v2, original AnimateDiff layout, max 32 frames)" in text


def test_build_full_size_model_from_ip2p_and_v2_motion_module(full_size_parts):
    d, unet, motion, probe = full_size_parts
    out = d / "vidiff_ip2p_mmv2.safetensors"
    code, text = _cli("build", "--unet", unet, "--motion-module", motion, "--out", out, "--dtype", "fp16")
    assert code == 0, text
    # parameters only: the 21 positional tables (buffers, 0.6 M values) are not counted
    assert "1312.7 M parameters (UNet 859.5 M, motion 453.2 M, image MLP 0.00 M)" in text, text
    assert "skipped: " in text and "VAE" in text and "text encoder" in text and "DDPM schedule buffers" in text
    model = load_vidiff(out)
    counts = model.num_parameters()
    assert counts["unet"] == param_count(ldm_unet_shapes(in_channels=8)) == 859_532_484
    assert 1.31e9 < counts["total"] < 1.32e9
    assert model.unet.conv_in.weight.shape == (320, 8, 3, 3) and model.dtype == torch.float16
    assert torch.equal(model.unet.conv_in.weight, probe["model.diffusion_model.input_blocks.0.0.weight"])
    assert torch.equal(model.unet.mid_block.attentions[0].transformer_blocks[0].attn2.to_k.weight,
                       probe["model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight"])
    assert torch.equal(model.unet.down_blocks[2].motion_modules[1].proj_in.weight, probe["mm"])
    assert model.config.unet.use_motion_mid_block and model.config.unet.motion_max_seq_length == 32


def test_cli_reports_wrong_file_in_one_line(full_size_parts):
    d, unet, motion, _ = full_size_parts
    code, text = _cli("build", "--unet", motion, "--motion-module", unet, "--out", d / "x.safetensors")
    assert code == 2
    assert text.strip().count("\n") == 0 and "Traceback" not in text
    assert "mm_sd_v15_v2.ckpt: expected an InstructPix2Pix or SD-1.5 checkpoint; this file looks like an AnimateDiff" in text
