"""Checks that tests/fixture_files.py describes the real checkpoint formats.

Independent references: diffusers' single-file converters (``convert_ldm_unet_checkpoint``,
``convert_ldm_vae_checkpoint``, ``convert_ldm_clip_checkpoint``,
``convert_animatediff_checkpoint_to_diffusers``) loading strictly into diffusers / transformers models,
diffusers' ``infer_diffusers_model_type`` and ``DDPMScheduler``, and published key / parameter counts.
Full-size models are built on the ``meta`` device so nothing large is allocated.
"""

from __future__ import annotations

import math
import os

import pytest
import torch

import fixture_files as ff

os.environ.setdefault("HF_HUB_OFFLINE", "1")

diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")
from diffusers import AutoencoderKL, DDPMScheduler, MotionAdapter, UNet2DConditionModel  # noqa: E402
from diffusers.loaders import single_file_utils as sfu  # noqa: E402
from diffusers.models.embeddings import SinusoidalPositionalEmbedding  # noqa: E402

META = torch.device("meta")

TINY_UNET = dict(block_out_channels=(32, 64), attention_blocks=(True, False), layers_per_block=2)
TINY_DIFFUSERS_UNET = dict(
    block_out_channels=(32, 64),
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768,
    layers_per_block=2,
    norm_num_groups=32,
    attention_head_dim=8,
    sample_size=16,
)
SD15_DIFFUSERS_UNET = dict(
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    cross_attention_dim=768,
    layers_per_block=2,
    attention_head_dim=8,
    sample_size=64,
)
SD15_DIFFUSERS_VAE = dict(
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    latent_channels=4,
    layers_per_block=2,
    sample_size=512,
)


def _shapes(sd: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


def _meta_unet(**cfg) -> UNet2DConditionModel:
    with META:
        return UNet2DConditionModel(**cfg)


# --------------------------------------------------------------------------------------------------
# LDM UNet
# --------------------------------------------------------------------------------------------------
def test_sd15_unet_counts() -> None:
    s = ff.ldm_unet_shapes()
    assert len(s) == 686
    assert ff.param_count(s) == 859_520_964
    assert s["input_blocks.0.0.weight"] == (320, 4, 3, 3)
    assert s["time_embed.0.weight"] == (1280, 320)
    assert s["input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"] == (320, 768)
    assert s["input_blocks.1.1.transformer_blocks.0.ff.net.0.proj.weight"] == (2560, 320)
    assert s["input_blocks.1.1.proj_in.weight"] == (320, 320, 1, 1)
    assert s["input_blocks.3.0.op.weight"] == (320, 320, 3, 3)
    assert s["output_blocks.2.1.conv.weight"] == (1280, 1280, 3, 3)  # up block without attention
    assert s["output_blocks.5.2.conv.weight"] == (1280, 1280, 3, 3)  # up block with attention
    assert s["output_blocks.11.0.skip_connection.weight"] == (320, 640, 1, 1)
    assert s["out.2.weight"] == (4, 320, 3, 3)
    assert not any(k.startswith("output_blocks.11.2") or k.startswith("input_blocks.12.") for k in s)
    # SD-2 style linear projections only change proj_in / proj_out shapes
    lin = ff.ldm_unet_shapes(linear_proj=True)
    assert lin.keys() == s.keys()
    assert lin["input_blocks.1.1.proj_in.weight"] == (320, 320)


def test_ip2p_unet_in_channels() -> None:
    s = ff.ldm_unet_shapes(in_channels=8)
    assert s["input_blocks.0.0.weight"] == (320, 8, 3, 3)
    assert len(s) == 686
    assert ff.param_count(s) == 859_520_964 + 320 * 4 * 9


def test_tiny_unet_converts_and_loads_strict_with_equal_values() -> None:
    shapes = ff.ldm_unet_shapes(**TINY_UNET)
    ckpt = ff.ldm_checkpoint_tensors(shapes, dtype=torch.float32, seed=3)
    unet = UNet2DConditionModel(**TINY_DIFFUSERS_UNET)
    converted = sfu.convert_ldm_unet_checkpoint(ckpt, dict(unet.config))
    unet.load_state_dict(converted, strict=True)
    # the conversion is a pure renaming: every source tensor is used exactly once, unchanged
    src_ids = {id(v) for k, v in ckpt.items() if k.startswith(ff.LDM_UNET_PREFIX)}
    assert len(src_ids) == len(shapes) == len(converted)
    assert {id(v) for v in converted.values()} == src_ids
    model_sd = unet.state_dict()
    for k, v in converted.items():
        assert torch.equal(model_sd[k], v), k


def test_tiny_unet_forward_runs() -> None:
    """The random values are well scaled enough for a forward pass (norm weights ~1)."""
    ckpt = ff.ldm_checkpoint_tensors(ff.ldm_unet_shapes(**TINY_UNET), dtype=torch.float32)
    unet = UNet2DConditionModel(**TINY_DIFFUSERS_UNET)
    unet.load_state_dict(sfu.convert_ldm_unet_checkpoint(ckpt, dict(unet.config)), strict=True)
    with torch.no_grad():
        out = unet(torch.randn(1, 4, 16, 16), 10, encoder_hidden_states=torch.randn(1, 7, 768)).sample
    assert out.shape == (1, 4, 16, 16) and torch.isfinite(out).all()


def test_tiny_unet_ema_extraction_picks_ema_values() -> None:
    shapes = ff.ldm_unet_shapes(**TINY_UNET)
    assert len(shapes) > 100  # diffusers only treats a file as EMA with > 100 model_ema keys
    ckpt = ff.ldm_checkpoint_tensors(shapes, with_ema=True, dtype=torch.float32, seed=1)
    ema_keys = [k for k in ckpt if k.startswith("model_ema.")]
    assert len(ema_keys) == len(shapes) + 2
    assert ckpt["model_ema.decay"].shape == () and ckpt["model_ema.decay"].dtype == torch.float32
    assert ckpt["model_ema.num_updates"].dtype == torch.int32
    cfg = dict(_meta_unet(**TINY_DIFFUSERS_UNET).config)
    conv_ema = sfu.convert_ldm_unet_checkpoint(ckpt, cfg, extract_ema=True)
    conv_raw = sfu.convert_ldm_unet_checkpoint(ckpt, cfg, extract_ema=False)
    assert conv_ema.keys() == conv_raw.keys()
    assert all(v is not None for v in conv_ema.values())  # every flat EMA name was found
    ema_ids = {id(ckpt[k]) for k in ema_keys}
    assert {id(v) for v in conv_ema.values()} <= ema_ids
    k = "conv_in.weight"
    assert not torch.equal(conv_ema[k], conv_raw[k])
    unet = UNet2DConditionModel(**TINY_DIFFUSERS_UNET)
    unet.load_state_dict(conv_ema, strict=True)


def test_sd15_full_size_conversion_on_meta_with_ema() -> None:
    ckpt = ff.ldm_checkpoint_tensors(
        with_ema=True, with_vae=True, with_text_encoder=True, with_schedule_buffers=True, device="meta"
    )
    unet = _meta_unet(**SD15_DIFFUSERS_UNET)
    ref = _shapes(unet.state_dict())
    for extract_ema in (False, True):
        conv = sfu.convert_ldm_unet_checkpoint(ckpt, dict(unet.config), extract_ema=extract_ema)
        assert all(v is not None for v in conv.values())
        assert _shapes(conv) == ref
        unet.load_state_dict(conv, strict=True, assign=True)
    assert sfu.infer_diffusers_model_type(ckpt) == "v1"


def test_ip2p_full_size_conversion_on_meta() -> None:
    ckpt = ff.ldm_checkpoint_tensors(ff.ldm_unet_shapes(in_channels=8), device="meta")
    unet = _meta_unet(**SD15_DIFFUSERS_UNET, in_channels=8)
    conv = sfu.convert_ldm_unet_checkpoint(ckpt, dict(unet.config))
    assert _shapes(conv) == _shapes(unet.state_dict())


def test_checkpoint_composition_and_determinism() -> None:
    tiny = ff.ldm_unet_shapes(**TINY_UNET)
    vae = ff.sd_vae_shapes(ch=32, ch_mult=(1, 2))
    text = ff.clip_l_text_shapes(with_position_ids=True, hidden_size=32, num_layers=2, intermediate_size=64,
                                 vocab_size=100)
    kw = dict(with_ema=True, with_vae=True, with_text_encoder=True, with_schedule_buffers=True,
              vae_shapes=vae, text_encoder_shapes=text)
    a = ff.ldm_checkpoint_tensors(tiny, seed=5, **kw)
    b = ff.ldm_checkpoint_tensors(tiny, seed=5, **kw)
    c = ff.ldm_checkpoint_tensors(tiny, seed=6, **kw)
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["model.diffusion_model.out.2.weight"], c["model.diffusion_model.out.2.weight"])
    n = len(tiny) + (len(tiny) + 2) + len(vae) + len(text) + len(ff.LDM_SCHEDULE_BUFFER_NAMES)
    assert len(a) == n
    assert sum(k.startswith("first_stage_model.encoder.") for k in a) > 0
    pid = a["cond_stage_model.transformer.text_model.embeddings.position_ids"]
    assert pid.dtype == torch.int64 and torch.equal(pid[0], torch.arange(77))
    w = a["model.diffusion_model.input_blocks.0.0.weight"]
    assert w.dtype == torch.float16 and 0.01 < w.float().std() < 0.04 and abs(w.float().mean()) < 0.01
    gn = a["model.diffusion_model.out.0.weight"].float()
    assert (gn - 1).abs().max() < 0.2  # norm weights are 1 + noise
    assert a["model.diffusion_model.out.0.bias"].float().abs().max() < 0.2
    # adding components never changes the UNet values
    plain = ff.ldm_checkpoint_tensors(tiny, seed=5)
    assert all(torch.equal(plain[k], a[k]) for k in plain)
    # EMA flat names are unique and diffusers-compatible
    for k in tiny:
        assert "model_ema.diffusion_model" + k.replace(".", "") in a


def test_schedule_buffers_match_diffusers_scaled_linear() -> None:
    buf = ff.ldm_schedule_buffers(torch.float32)
    assert tuple(buf) == ff.LDM_SCHEDULE_BUFFER_NAMES
    assert all(v.shape == (1000,) and v.dtype == torch.float32 for v in buf.values())
    sched = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                          beta_schedule="scaled_linear")
    torch.testing.assert_close(buf["betas"], sched.betas.float(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(buf["alphas_cumprod"], sched.alphas_cumprod.float(), rtol=1e-4, atol=1e-7)
    ac = sched.alphas_cumprod.double()
    recipm1 = buf["sqrt_recipm1_alphas_cumprod"].double()
    torch.testing.assert_close(recipm1, (1 / ac - 1).sqrt(), rtol=1e-4, atol=0)
    assert buf["alphas_cumprod_prev"][0] == 1.0
    assert buf["posterior_variance"][0] == 0.0
    assert buf["posterior_log_variance_clipped"][0] == pytest.approx(math.log(1e-20), rel=1e-6)
    half = ff.ldm_checkpoint_tensors(ff.ldm_unet_shapes(**TINY_UNET), with_schedule_buffers=True)
    assert half["alphas_cumprod"].dtype == torch.float16


# --------------------------------------------------------------------------------------------------
# VAE
# --------------------------------------------------------------------------------------------------
def test_sd_vae_counts_and_keys() -> None:
    s = ff.sd_vae_shapes()
    assert len(s) == 248
    assert ff.param_count(s) == 83_653_863
    for part in ("q", "k", "v", "proj_out"):
        assert s[f"encoder.mid.attn_1.{part}.weight"] == (512, 512, 1, 1)
        assert s[f"decoder.mid.attn_1.{part}.weight"] == (512, 512, 1, 1)
    assert s["encoder.conv_out.weight"] == (8, 512, 3, 3)
    assert s["quant_conv.weight"] == (8, 8, 1, 1)
    assert s["post_quant_conv.weight"] == (4, 4, 1, 1)
    assert s["decoder.up.0.block.0.nin_shortcut.weight"] == (128, 256, 1, 1)
    assert s["decoder.up.3.upsample.conv.weight"] == (512, 512, 3, 3)
    assert "decoder.up.0.upsample.conv.weight" not in s
    assert "encoder.down.3.downsample.conv.weight" not in s


@pytest.mark.parametrize("prefix", ["", "first_stage_model."])
def test_sd_vae_full_size_conversion_on_meta(prefix: str) -> None:
    ckpt = ff.meta_tensors(ff.sd_vae_shapes(), prefix=prefix)
    with META:
        vae = AutoencoderKL(**SD15_DIFFUSERS_VAE)
    conv = sfu.convert_ldm_vae_checkpoint(ckpt, dict(vae.config))
    assert _shapes(conv) == _shapes(vae.state_dict())
    vae.load_state_dict(conv, strict=True, assign=True)


def test_tiny_vae_loads_strict_with_equal_values() -> None:
    shapes = ff.sd_vae_shapes(ch=32, ch_mult=(1, 2))
    ckpt = ff.random_tensors(shapes, dtype=torch.float32, seed=2, prefix="first_stage_model.")
    vae = AutoencoderKL(block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, layers_per_block=2,
                        norm_num_groups=32)
    conv = sfu.convert_ldm_vae_checkpoint(ckpt, dict(vae.config))
    vae.load_state_dict(conv, strict=True)
    msd = vae.state_dict()
    for k, v in conv.items():
        assert torch.equal(msd[k], v), k
    assert torch.equal(msd["encoder.mid_block.attentions.0.to_q.weight"],
                      ckpt["first_stage_model.encoder.mid.attn_1.q.weight"][:, :, 0, 0])


# --------------------------------------------------------------------------------------------------
# CLIP
# --------------------------------------------------------------------------------------------------
def _strip(keys, prefix: str) -> dict:
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in keys.items()}


def test_clip_l_text_matches_transformers() -> None:
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                         num_attention_heads=12,
                         max_position_embeddings=77, vocab_size=49408, projection_dim=768)
    with META:
        model = CLIPTextModel(cfg)
    ref = _shapes(model.state_dict())
    # Found with transformers 5.23: CLIPTextModel.state_dict() has NO "text_model." prefix (the module
    # was flattened; from_pretrained maps old files with a PrefixChange(prefix_to_remove="text_model")),
    # and position_ids is a non-persistent buffer.  Files on disk (SD-1.x, HF repos) keep the prefix.
    # Compare modulo that prefix so the test holds for transformers 4.x (prefixed) as well.
    ref = _strip(ref, "text_model.")
    ours = ff.clip_l_text_shapes()
    assert all(k.startswith("text_model.") for k in ours)
    assert _strip(ours, "text_model.") == ref
    assert len(ours) == 196 and ff.param_count(ours) == 123_060_480
    withpid = ff.clip_l_text_shapes(with_position_ids=True)
    assert withpid["text_model.embeddings.position_ids"] == (1, 77)
    buffers = _strip(_shapes(dict(model.named_buffers())), "text_model.")
    assert buffers["embeddings.position_ids"] == (1, 77)
    # diffusers' LDM CLIP converter strips exactly the single-file prefix
    ckpt = ff.meta_tensors(withpid, prefix=ff.LDM_TEXT_PREFIX)
    assert _shapes(sfu.convert_ldm_clip_checkpoint(ckpt)) == withpid


def test_clip_vision_vit_l_matches_transformers() -> None:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    cfg = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                           num_attention_heads=16,
                           image_size=224, patch_size=14, projection_dim=768)
    with META:
        model = CLIPVisionModelWithProjection(cfg)
    ref = _strip(_shapes(model.state_dict()), "vision_model.")  # 5.23 keeps the prefix; be tolerant
    ours = ff.clip_vision_vit_l_shapes()
    assert _strip(ours, "vision_model.") == ref
    assert "vision_model.pre_layrnorm.weight" in ours
    assert ours["visual_projection.weight"] == (768, 1024)
    assert "visual_projection.bias" not in ours
    assert len(ours) == 392 and ff.param_count(ours) == 303_966_208
    withpid = ff.clip_vision_vit_l_shapes(with_position_ids=True)
    assert withpid["vision_model.embeddings.position_ids"] == (1, 257)


# --------------------------------------------------------------------------------------------------
# AnimateDiff motion modules
# --------------------------------------------------------------------------------------------------
MM_PARAMS = {"v1": 417_982_400, "v2": 454_417_600, "v3": 418_264_000, "sdxl": 237_496_000}


@pytest.mark.parametrize("version", ["v1", "v2", "v3", "sdxl"])
def test_motion_module_full_size_matches_diffusers(version: str) -> None:
    chans, pe_len, mid = ff.MOTION_MODULE_VERSIONS[version]
    shapes = ff.motion_module_shapes(version)
    assert ff.param_count(shapes) == MM_PARAMS[version]
    assert ("mid_block.motion_modules.0.temporal_transformer.norm.weight" in shapes) == mid
    ckpt = ff.meta_tensors(shapes)
    conv = sfu.convert_animatediff_checkpoint_to_diffusers(ckpt)
    with META:
        adapter = MotionAdapter(block_out_channels=chans, motion_max_seq_length=pe_len,
                                use_motion_mid_block=mid)
    ref = _shapes(adapter.state_dict())
    ref_pe = {k: v for k, v in ref.items() if k.endswith("pos_embed.pe")}
    assert _shapes(conv) == {k: v for k, v in ref.items() if k not in ref_pe}
    # every diffusers pos_embed.pe corresponds to our two identical pos_encoder.pe buffers
    ours_pe = {k: v for k, v in shapes.items() if k.endswith("pos_encoder.pe")}
    assert len(ours_pe) == 2 * len(ref_pe)
    for k, v in ref_pe.items():
        base = k.replace(".transformer_blocks.0.pos_embed.pe", ".temporal_transformer.transformer_blocks.0")
        for a in (0, 1):
            assert ours_pe[f"{base}.attention_blocks.{a}.pos_encoder.pe"] == v == (1, pe_len, v[-1])
    # total = diffusers adapter + the second (duplicate) pe per module
    assert ff.param_count(shapes) == sum(math.prod(v) for v in ref.values()) + sum(
        math.prod(v) for v in ref_pe.values())
    expected = {"v1": "animatediff_v1", "v2": "animatediff_v2", "v3": "animatediff_v3",
                "sdxl": "animatediff_sdxl_beta"}[version]
    assert sfu.infer_diffusers_model_type(ckpt) == expected


@pytest.mark.parametrize("c,length", [(320, 24), (640, 32), (1280, 32)])
def test_sinusoidal_pe_matches_diffusers(c: int, length: int) -> None:
    ref = SinusoidalPositionalEmbedding(c, length).pe
    torch.testing.assert_close(ff.sinusoidal_pe(c, length), ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(ff.sinusoidal_pe(c, length, torch.float16).float(), ref, rtol=0, atol=1e-3)


def test_motion_module_tensors_values_and_tiny_load() -> None:
    mm = ff.motion_module_tensors("v2", block_out_channels=(32, 64), max_seq_length=16, seed=4)
    assert mm.keys() == ff.motion_module_shapes("v2", (32, 64), max_seq_length=16).keys()
    pe_keys = [k for k in mm if k.endswith("pos_encoder.pe")]
    for k in pe_keys:
        c = mm[k].shape[-1]
        assert mm[k].dtype == torch.float16 and mm[k].shape == (1, 16, c)
        ref = SinusoidalPositionalEmbedding(c, 16).pe
        torch.testing.assert_close(mm[k].float(), ref, rtol=0, atol=1e-3)
        if ".attention_blocks.0." in k:
            twin = k.replace(".attention_blocks.0.", ".attention_blocks.1.")
            assert torch.equal(mm[k], mm[twin])
            assert mm[k].data_ptr() != mm[twin].data_ptr()  # separate storage: safetensors can save it
    # per-version pe length defaults
    pe0 = ("down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0"
           ".attention_blocks.0.pos_encoder.pe")
    assert ff.motion_module_shapes("v1")[pe0] == (1, 24, 320)
    assert ff.motion_module_shapes("v3")[pe0] == (1, 32, 320)
    assert ff.motion_module_shapes("v3", max_seq_length=64)[pe0] == (1, 64, 320)
    # strict load of the renamed values into a tiny diffusers MotionAdapter (only pos_embed missing)
    adapter = MotionAdapter(block_out_channels=(32, 64), motion_max_seq_length=16, use_motion_mid_block=True,
                            motion_norm_num_groups=32)
    conv = sfu.convert_animatediff_checkpoint_to_diffusers({k: v.float() for k, v in mm.items()})
    res = adapter.load_state_dict(conv, strict=False)
    assert res.unexpected_keys == []
    assert res.missing_keys and all(k.endswith("pos_embed.pe") for k in res.missing_keys)
    msd = adapter.state_dict()
    for k, v in conv.items():
        assert torch.equal(msd[k], v), k


def test_motion_module_key_layout() -> None:
    s = ff.motion_module_shapes("v2")
    p = "up_blocks.0.motion_modules.2.temporal_transformer."
    assert s[p + "proj_in.weight"] == (1280, 1280)
    assert s[p + "transformer_blocks.0.attention_blocks.1.to_out.0.bias"] == (1280,)
    assert p + "transformer_blocks.0.attention_blocks.1.to_q.bias" not in s
    assert s[p + "transformer_blocks.0.ff.net.0.proj.weight"] == (10240, 1280)
    assert s[p + "transformer_blocks.0.ff.net.2.weight"] == (1280, 5120)
    assert s[p + "transformer_blocks.0.ff_norm.weight"] == (1280,)
    assert s["up_blocks.3.motion_modules.2.temporal_transformer.norm.weight"] == (320,)
    assert "down_blocks.0.motion_modules.2.temporal_transformer.norm.weight" not in s
    assert "up_blocks.3.motion_modules.3.temporal_transformer.norm.weight" not in s
    sx = ff.motion_module_shapes("sdxl")
    assert "down_blocks.3.motion_modules.0.temporal_transformer.norm.weight" not in sx
    assert sx["up_blocks.2.motion_modules.0.temporal_transformer.norm.weight"] == (320,)
    with pytest.raises(ValueError):
        ff.motion_module_shapes("v4")


# --------------------------------------------------------------------------------------------------
# SDXL subset
# --------------------------------------------------------------------------------------------------
def test_sdxl_subset() -> None:
    sd = ff.sdxl_checkpoint_tensors()
    expect = {
        "model.diffusion_model.label_emb.0.0.weight": (1280, 2816),
        "model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3),
        "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (640, 2048),
        "model.diffusion_model.input_blocks.4.1.proj_in.weight": (640, 640),
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
        "conditioner.embedders.1.model.token_embedding.weight": (49408, 1280),
        "conditioner.embedders.1.model.positional_embedding": (77, 1280),
        "conditioner.embedders.1.model.text_projection": (1280, 1280),
        "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight": (3840, 1280),
        "first_stage_model.encoder.conv_in.weight": (128, 3, 3, 3),
        "first_stage_model.post_quant_conv.weight": (4, 4, 1, 1),
    }
    for k, v in expect.items():
        assert tuple(sd[k].shape) == v, k
    assert all(v.dtype == torch.float16 for v in sd.values())
    assert sfu.infer_diffusers_model_type(sd) == "xl_base"
    nbytes = sum(v.numel() * v.element_size() for v in sd.values())
    assert nbytes < 280e6
    small = ff.sdxl_checkpoint_tensors(with_token_embeddings=False)
    assert sum(v.numel() * v.element_size() for v in small.values()) < 70e6
    assert sfu.infer_diffusers_model_type(small) == "xl_base"


# --------------------------------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------------------------------
def test_save_tensors_formats_and_truncation(tmp_path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file

    sd = ff.ldm_checkpoint_tensors(ff.ldm_unet_shapes(**TINY_UNET), with_ema=True, with_schedule_buffers=True,
                                   with_text_encoder=True,
                                   text_encoder_shapes=ff.clip_l_text_shapes(True, 32, 1, 64, 100))
    st = ff.save_tensors(tmp_path / "m.safetensors", sd)
    back = load_file(str(st))
    assert back.keys() == sd.keys() and all(torch.equal(back[k], sd[k]) and back[k].dtype == sd[k].dtype
                                            for k in sd)
    with safe_open(str(st), "pt") as f:
        assert set(f.keys()) == set(sd)

    ck = ff.save_tensors(tmp_path / "m.ckpt", sd, wrap_state_dict=True)
    obj = torch.load(ck, map_location="cpu", weights_only=True)
    assert set(obj) == {"state_dict", "global_step"} and obj["global_step"] == 22000
    assert all(torch.equal(obj["state_dict"][k], sd[k]) for k in sd)
    pt = ff.save_tensors(tmp_path / "m.pt", sd)
    assert set(torch.load(pt, map_location="cpu", weights_only=True)) == set(sd)
    other = ff.save_tensors(tmp_path / "m.weights", sd, fmt="safetensors")
    assert set(load_file(str(other))) == set(sd)
    with pytest.raises(ValueError):
        ff.save_tensors(tmp_path / "m.weights", sd)

    # motion modules (pe twins) must be savable as safetensors too
    mm = ff.motion_module_tensors("v3", block_out_channels=(32,), layers_per_block=1)
    ff.save_tensors(tmp_path / "mm.safetensors", mm)

    bad = ff.truncate_file(st, 0.5)
    assert bad != st and bad.suffix == ".safetensors"
    assert bad.stat().st_size == st.stat().st_size // 2
    with pytest.raises(Exception):  # safetensors reports the truncated header / data
        load_file(str(bad))
    bad_ck = ff.truncate_file(ck, 0.5, tmp_path / "bad.ckpt")
    with pytest.raises(Exception):
        torch.load(bad_ck, map_location="cpu", weights_only=True)
    inplace = ff.truncate_file(pt, 0.25, pt)
    assert inplace == pt and pt.stat().st_size > 0


