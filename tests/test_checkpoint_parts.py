"""Building a VIDiff model from an InstructPix2Pix / SD-1.5 LDM file and an AnimateDiff motion module
(tiny sizes; the full SD-1.5 size is in test_full_size.py). Fixture files come from fixture_files.py,
an independent description of the formats; diffusers' own converters serve as a second reference."""

import pytest
import torch
from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers
from fixture_files import (ldm_checkpoint_tensors, ldm_unet_shapes, motion_module_tensors, save_tensors,
                           sd_vae_shapes)

from vidiff_model import CheckpointError, build_vidiff_from_parts, tiny_config
from vidiff_model.checkpoints.ldm_unet import diffusers_to_ldm

TINY = tiny_config(image_instruction=False).unet
TINY_LDM = dict(block_out_channels=(32, 64), attention_blocks=(True, False), context_dim=768)


def _unet_file(path, in_channels=8, **kwargs):
    tensors = ldm_checkpoint_tensors(ldm_unet_shapes(in_channels=in_channels, **TINY_LDM), dtype=torch.float32, **kwargs)
    return save_tensors(path, tensors, wrap_state_dict=str(path).endswith(".ckpt")), tensors


def _motion_file(path, version="v2", **kwargs):
    tensors = motion_module_tensors(version, block_out_channels=(32, 64), dtype=torch.float32, seed=7, **kwargs)
    return save_tensors(path, tensors), tensors


def _build(unet, motion, **kwargs):
    return build_vidiff_from_parts(unet, motion, unet_config=TINY, **kwargs)


def test_ip2p_and_motion_module_weights_land_where_diffusers_puts_them(tmp_path):
    unet_path, unet_tensors = _unet_file(tmp_path / "ip2p.safetensors")
    motion_path, motion_tensors = _motion_file(tmp_path / "mm.safetensors")
    model, report = _build(unet_path, motion_path)
    state = model.unet.state_dict()
    # spatial: every diffusers tensor equals the LDM tensor of the same meaning
    spatial = [k for k in state if "motion_modules" not in k]
    assert len(spatial) == len(unet_tensors)
    for k in spatial:
        assert torch.equal(state[k], unet_tensors["model.diffusion_model." + diffusers_to_ldm(k, TINY)]), k
    # temporal: compared with diffusers' own AnimateDiff converter (which drops the pe tables)
    reference = convert_animatediff_checkpoint_to_diffusers(motion_tensors)
    for k, v in reference.items():
        assert torch.equal(state[k], v), k
    pe = [k for k in state if k.endswith("pos_embed.pe")]
    assert pe and all(torch.equal(state[k], motion_tensors[k.replace("transformer_blocks.0.pos_embed", "temporal_transformer.transformer_blocks.0.attention_blocks.0.pos_encoder")]) for k in pe)
    assert report.used == len(spatial) + len(reference) + len(pe)
    assert model.config.unet.use_motion_mid_block and model.config.unet.motion_max_seq_length == 32
    x = torch.randn(1, 4, 4, 8, 8)
    with torch.no_grad():
        assert model(x, x, 5, model.encode_instruction(torch.randn(1, 77, 768))).shape == x.shape


def test_ldm_mapping_agrees_with_diffusers_converter(tmp_path):
    """Our renaming vs diffusers' convert_ldm_unet_checkpoint on the same tiny file."""
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    _, tensors = _unet_file(tmp_path / "ip2p.safetensors")
    unet2d = UNet2DConditionModel(in_channels=8, block_out_channels=(32, 64), cross_attention_dim=768,
                                  down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                  up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=2)
    converted = convert_ldm_unet_checkpoint(dict(tensors), unet2d.config)
    assert len(converted) == len(tensors)
    for k, v in converted.items():
        assert torch.equal(v, tensors["model.diffusion_model." + diffusers_to_ldm(k, TINY)]), k


def test_sd15_conv_in_is_inflated_with_zeros(tmp_path):
    unet_path, tensors = _unet_file(tmp_path / "sd15.safetensors", in_channels=4)
    model, report = _build(unet_path, _motion_file(tmp_path / "mm.safetensors")[0])
    w = model.unet.conv_in.weight
    assert w.shape == (32, 8, 3, 3)
    assert torch.equal(w[:, :4], tensors["model.diffusion_model.input_blocks.0.0.weight"])
    assert not w[:, 4:].any()
    assert any("inflated from 4 to 8" in n for n in report.notes)


def test_ema_weights_selectable_and_everything_accounted(tmp_path):
    small_vae = dict(list(sd_vae_shapes().items())[:6])
    unet_path, tensors = _unet_file(tmp_path / "ip2p.ckpt", with_ema=True, with_schedule_buffers=True,
                                    with_vae=True, vae_shapes=small_vae)
    motion = _motion_file(tmp_path / "mm.safetensors")[0]
    raw, report = _build(unet_path, motion)
    ema, ema_report = _build(unet_path, motion, use_ema=True)
    key = "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
    assert torch.equal(raw.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn2.to_k.weight,
                       tensors["model.diffusion_model." + key])
    assert torch.equal(ema.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn2.to_k.weight,
                       tensors["model_ema.diffusion_model" + key.replace(".", "")])
    n_unet = len(ldm_unet_shapes(in_channels=8, **TINY_LDM))
    assert report.skipped["EMA weights (not used)"] == n_unet
    assert ema_report.skipped["raw UNet weights (EMA used instead)"] == n_unet
    for r in (report, ema_report):
        assert r.skipped["DDPM schedule buffers"] == 12 and r.skipped["VAE"] == 6
        assert r.skipped["EMA bookkeeping (decay, num_updates)"] == 2
    no_ema = _unet_file(tmp_path / "plain.safetensors")[0]
    with pytest.raises(CheckpointError, match="plain.safetensors: has no EMA weights"):
        _build(no_ema, motion, use_ema=True)


@pytest.mark.parametrize("version, length, mid", [("v1", 24, False), ("v2", 32, True), ("v3", 32, False)])
def test_motion_module_versions(tmp_path, version, length, mid):
    unet_path = _unet_file(tmp_path / "ip2p.safetensors")[0]
    motion_path = save_tensors(tmp_path / f"mm_{version}.ckpt",
                               motion_module_tensors(version, block_out_channels=(32, 64), dtype=torch.float16))
    model, report = _build(unet_path, motion_path)
    assert model.config.unet.motion_max_seq_length == length
    assert model.config.unet.use_motion_mid_block == mid
    assert (model.unet.mid_block.motion_modules is not None) if mid else not hasattr(model.unet.mid_block, "motion_modules")
    assert model.dtype == torch.float32  # cast on load


def test_diffusers_layout_motion_adapter(tmp_path):
    from diffusers import MotionAdapter

    adapter = MotionAdapter(block_out_channels=(32, 64), motion_layers_per_block=2, motion_num_attention_heads=4,
                            motion_max_seq_length=32, use_motion_mid_block=False)
    path = save_tensors(tmp_path / "adapter.safetensors", adapter.state_dict())
    model, _ = _build(_unet_file(tmp_path / "ip2p.safetensors")[0], path)
    assert torch.equal(model.unet.down_blocks[1].motion_modules[1].proj_in.weight,
                       adapter.down_blocks[1].motion_modules[1].proj_in.weight)


def test_missing_unexpected_and_misshapen_tensors_are_named(tmp_path):
    motion = _motion_file(tmp_path / "mm.safetensors")[0]
    tensors = ldm_checkpoint_tensors(ldm_unet_shapes(in_channels=8, **TINY_LDM), dtype=torch.float32)
    gone = "model.diffusion_model.output_blocks.2.1.conv.weight"
    save_tensors(tmp_path / "missing.safetensors", {k: v for k, v in tensors.items() if k != gone})
    with pytest.raises(CheckpointError, match=rf"missing.safetensors: .*1 missing tensors \({gone}\)"):
        _build(tmp_path / "missing.safetensors", motion)
    save_tensors(tmp_path / "extra.safetensors", {**tensors, "model.diffusion_model.lora_hook.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"1 unexpected tensors \(model.diffusion_model.lora_hook.weight\)"):
        _build(tmp_path / "extra.safetensors", motion)
    save_tensors(tmp_path / "conv.safetensors", {**tensors, "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(32, 9, 3, 3)})
    with pytest.raises(CheckpointError, match=r"input_blocks.0.0.weight is \(32, 9, 3, 3\); expected"):
        _build(tmp_path / "conv.safetensors", motion)

    mm = motion_module_tensors("v2", block_out_channels=(32, 64), dtype=torch.float32)
    key = "up_blocks.1.motion_modules.2.temporal_transformer.transformer_blocks.0.ff_norm.bias"
    save_tensors(tmp_path / "mm_missing.safetensors", {k: v for k, v in mm.items() if k != key})
    with pytest.raises(CheckpointError, match=rf"mm_missing.safetensors: .*original layout.*1 missing tensors \({key}\)"):
        _build(_unet_file(tmp_path / "ip2p.safetensors")[0], tmp_path / "mm_missing.safetensors")
    pe1 = "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.1.pos_encoder.pe"
    save_tensors(tmp_path / "mm_pe.safetensors", {**mm, pe1: mm[pe1] + 1})
    with pytest.raises(CheckpointError, match="attention_blocks.1.pos_encoder.pe differs"):
        _build(_unet_file(tmp_path / "ip2p.safetensors")[0], tmp_path / "mm_pe.safetensors")
