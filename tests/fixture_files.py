"""Random-weight fixtures with the exact key names and shapes of real checkpoint files.

Everything here is written from the original architectures (CompVis/LDM ``openaimodel.UNetModel`` and
``AutoencoderKL``, LDM ``LitEma`` / ``DDPM`` buffers, Hugging Face CLIP, guoyww AnimateDiff motion
modules, Stability ``sgm`` SDXL), NOT from ``vidiff_model`` nor from diffusers' key-conversion code, so
the library's loaders can be tested against an independent description of the formats without any
download.  Only ``torch``, ``safetensors`` and the standard library are imported.

Conventions:

* ``*_shapes()`` functions return ``dict[str, tuple[int, ...]]`` in the order the original module
  registers its parameters / buffers (``state_dict()`` order).
* ``*_tensors()`` functions turn such a dict into random tensors: normal(0, ``std``) values,
  deterministic from ``seed``; 1-D weights of normalisation layers (GroupNorm / LayerNorm) get
  ``1 + noise`` so that forward passes on the fixtures stay well scaled.  ``position_ids`` buffers are
  ``int64`` ``arange``; AnimateDiff ``pos_encoder.pe`` buffers hold the real sinusoidal table.
* Pass ``device="meta"`` to get shape-only tensors (no memory, no random numbers).
"""

from __future__ import annotations

import math
import os
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch
from safetensors.torch import save_file

Shapes = dict[str, tuple[int, ...]]

__all__ = [
    "Shapes",
    "ldm_unet_shapes",
    "sd_vae_shapes",
    "clip_l_text_shapes",
    "clip_vision_vit_l_shapes",
    "motion_module_shapes",
    "random_tensors",
    "meta_tensors",
    "param_count",
    "ldm_schedule_buffers",
    "ldm_checkpoint_tensors",
    "motion_module_tensors",
    "sinusoidal_pe",
    "sdxl_checkpoint_tensors",
    "save_tensors",
    "truncate_file",
    "LDM_UNET_PREFIX",
    "LDM_EMA_PREFIX",
    "LDM_VAE_PREFIX",
    "LDM_TEXT_PREFIX",
    "LDM_SCHEDULE_BUFFER_NAMES",
    "MOTION_MODULE_VERSIONS",
]

LDM_UNET_PREFIX = "model.diffusion_model."
LDM_EMA_PREFIX = "model_ema."
LDM_VAE_PREFIX = "first_stage_model."
LDM_TEXT_PREFIX = "cond_stage_model.transformer."

# Buffers registered by ldm.models.diffusion.ddpm.DDPM.register_schedule (persistent ones, in order).
LDM_SCHEDULE_BUFFER_NAMES: tuple[str, ...] = (
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
)

# version -> (default block_out_channels, default pos-encoder length, has mid block)
MOTION_MODULE_VERSIONS: dict[str, tuple[tuple[int, ...], int, bool]] = {
    "v1": ((320, 640, 1280, 1280), 24, False),  # mm_sd_v14.ckpt / mm_sd_v15.ckpt
    "v2": ((320, 640, 1280, 1280), 32, True),  # mm_sd_v15_v2.ckpt
    "v3": ((320, 640, 1280, 1280), 32, False),  # v3_sd15_mm.ckpt
    "sdxl": ((320, 640, 1280), 32, False),  # mm_sdxl_v10_beta.ckpt
}


# --------------------------------------------------------------------------------------------------
# small layer helpers (parameter order = torch registration order: weight then bias)
# --------------------------------------------------------------------------------------------------
def _linear(s: Shapes, name: str, out_f: int, in_f: int, bias: bool = True) -> None:
    s[f"{name}.weight"] = (out_f, in_f)
    if bias:
        s[f"{name}.bias"] = (out_f,)


def _conv(s: Shapes, name: str, out_c: int, in_c: int, k: int, bias: bool = True) -> None:
    s[f"{name}.weight"] = (out_c, in_c, k, k)
    if bias:
        s[f"{name}.bias"] = (out_c,)


def _norm(s: Shapes, name: str, c: int) -> None:
    s[f"{name}.weight"] = (c,)
    s[f"{name}.bias"] = (c,)


# --------------------------------------------------------------------------------------------------
# LDM UNet (ldm/modules/diffusionmodules/openaimodel.py + ldm/modules/attention.py)
# --------------------------------------------------------------------------------------------------
def _ldm_resblock(s: Shapes, name: str, ch: int, out_ch: int, emb_dim: int) -> None:
    """openaimodel.ResBlock (use_scale_shift_norm=False, use_conv=False)."""
    _norm(s, f"{name}.in_layers.0", ch)  # GroupNorm32
    _conv(s, f"{name}.in_layers.2", out_ch, ch, 3)
    _linear(s, f"{name}.emb_layers.1", out_ch, emb_dim)
    _norm(s, f"{name}.out_layers.0", out_ch)
    _conv(s, f"{name}.out_layers.3", out_ch, out_ch, 3)
    if out_ch != ch:
        _conv(s, f"{name}.skip_connection", out_ch, ch, 1)


def _ldm_spatial_transformer(
    s: Shapes, name: str, ch: int, context_dim: int, depth: int, linear_proj: bool
) -> None:
    """attention.SpatialTransformer: inner_dim = n_heads * d_head == ch for SD models."""
    inner = ch
    _norm(s, f"{name}.norm", ch)
    if linear_proj:
        _linear(s, f"{name}.proj_in", inner, ch)
    else:
        _conv(s, f"{name}.proj_in", inner, ch, 1)
    for d in range(depth):
        b = f"{name}.transformer_blocks.{d}"
        # BasicTransformerBlock registers attn1, ff, attn2, norm1, norm2, norm3
        _linear(s, f"{b}.attn1.to_q", inner, inner, bias=False)
        _linear(s, f"{b}.attn1.to_k", inner, inner, bias=False)
        _linear(s, f"{b}.attn1.to_v", inner, inner, bias=False)
        _linear(s, f"{b}.attn1.to_out.0", inner, inner)
        _linear(s, f"{b}.ff.net.0.proj", inner * 4 * 2, inner)  # GEGLU
        _linear(s, f"{b}.ff.net.2", inner, inner * 4)
        _linear(s, f"{b}.attn2.to_q", inner, inner, bias=False)
        _linear(s, f"{b}.attn2.to_k", inner, context_dim, bias=False)
        _linear(s, f"{b}.attn2.to_v", inner, context_dim, bias=False)
        _linear(s, f"{b}.attn2.to_out.0", inner, inner)
        _norm(s, f"{b}.norm1", inner)
        _norm(s, f"{b}.norm2", inner)
        _norm(s, f"{b}.norm3", inner)
    if linear_proj:
        _linear(s, f"{name}.proj_out", ch, inner)
    else:
        _conv(s, f"{name}.proj_out", ch, inner, 1)


def ldm_unet_shapes(
    block_out_channels: Sequence[int] = (320, 640, 1280, 1280),
    attention_blocks: Sequence[bool] = (True, True, True, False),
    layers_per_block: int = 2,
    in_channels: int = 4,
    out_channels: int = 4,
    context_dim: int = 768,
    num_heads: int = 8,
    transformer_depth: int = 1,
    linear_proj: bool = False,
) -> Shapes:
    """Keys (without ``model.diffusion_model.``) and shapes of the LDM ``openaimodel.UNetModel``.

    Defaults are SD-1.5 (686 keys, 859,520,964 parameters); ``in_channels=8`` gives InstructPix2Pix,
    ``linear_proj=True`` the SD-2 style ``use_linear_in_transformer``.
    """
    if len(attention_blocks) != len(block_out_channels):
        raise ValueError("attention_blocks and block_out_channels must have the same length")
    if layers_per_block < 1:
        raise ValueError("layers_per_block must be >= 1")
    for c in block_out_channels:
        if c % num_heads:
            raise ValueError(f"channels {c} not divisible by num_heads {num_heads}")
    L = layers_per_block
    n = len(block_out_channels)
    mc = block_out_channels[0]
    emb = 4 * mc
    s: Shapes = {}
    _linear(s, "time_embed.0", emb, mc)
    _linear(s, "time_embed.2", emb, emb)

    _conv(s, "input_blocks.0.0", mc, in_channels, 3)
    skip_chans = [mc]
    ch = mc
    idx = 1
    for level, out_ch in enumerate(block_out_channels):
        for _ in range(L):
            _ldm_resblock(s, f"input_blocks.{idx}.0", ch, out_ch, emb)
            ch = out_ch
            if attention_blocks[level]:
                _ldm_spatial_transformer(
                    s, f"input_blocks.{idx}.1", ch, context_dim, transformer_depth, linear_proj
                )
            skip_chans.append(ch)
            idx += 1
        if level != n - 1:
            _conv(s, f"input_blocks.{idx}.0.op", ch, ch, 3)  # Downsample (stride 2 conv)
            skip_chans.append(ch)
            idx += 1

    _ldm_resblock(s, "middle_block.0", ch, ch, emb)
    _ldm_spatial_transformer(s, "middle_block.1", ch, context_dim, transformer_depth, linear_proj)
    _ldm_resblock(s, "middle_block.2", ch, ch, emb)

    idx = 0
    for level in reversed(range(n)):
        out_ch = block_out_channels[level]
        for j in range(L + 1):
            ich = skip_chans.pop()
            _ldm_resblock(s, f"output_blocks.{idx}.0", ch + ich, out_ch, emb)
            ch = out_ch
            sub = 1
            if attention_blocks[level]:
                _ldm_spatial_transformer(
                    s, f"output_blocks.{idx}.1", ch, context_dim, transformer_depth, linear_proj
                )
                sub = 2
            if level and j == L:
                _conv(s, f"output_blocks.{idx}.{sub}.conv", ch, ch, 3)  # Upsample
            idx += 1
    assert not skip_chans

    _norm(s, "out.0", ch)
    _conv(s, "out.2", out_channels, mc, 3)
    return s


# --------------------------------------------------------------------------------------------------
# LDM AutoencoderKL (ldm/modules/diffusionmodules/model.py Encoder / Decoder)
# --------------------------------------------------------------------------------------------------
def _vae_resblock(s: Shapes, name: str, cin: int, cout: int) -> None:
    """model.ResnetBlock with temb_channels=0 and conv_shortcut=False."""
    _norm(s, f"{name}.norm1", cin)
    _conv(s, f"{name}.conv1", cout, cin, 3)
    _norm(s, f"{name}.norm2", cout)
    _conv(s, f"{name}.conv2", cout, cout, 3)
    if cin != cout:
        _conv(s, f"{name}.nin_shortcut", cout, cin, 1)


def _vae_attn(s: Shapes, name: str, c: int) -> None:
    """model.AttnBlock: GroupNorm + four 1x1 convs."""
    _norm(s, f"{name}.norm", c)
    for part in ("q", "k", "v", "proj_out"):
        _conv(s, f"{name}.{part}", c, c, 1)


def sd_vae_shapes(
    ch: int = 128,
    ch_mult: Sequence[int] = (1, 2, 4, 4),
    num_res_blocks: int = 2,
    z_channels: int = 4,
    in_channels: int = 3,
    out_ch: int = 3,
    embed_dim: int = 4,
) -> Shapes:
    """Keys/shapes of the LDM ``AutoencoderKL`` (defaults: SD-1.x VAE, 248 keys, 83,653,863 params)."""
    s: Shapes = {}
    n = len(ch_mult)
    # Encoder
    _conv(s, "encoder.conv_in", ch, in_channels, 3)
    in_mult = (1, *ch_mult)
    block_in = ch
    for i in range(n):
        block_in = ch * in_mult[i]
        block_out = ch * ch_mult[i]
        for j in range(num_res_blocks):
            _vae_resblock(s, f"encoder.down.{i}.block.{j}", block_in, block_out)
            block_in = block_out
        if i != n - 1:
            _conv(s, f"encoder.down.{i}.downsample.conv", block_in, block_in, 3)
    _vae_resblock(s, "encoder.mid.block_1", block_in, block_in)
    _vae_attn(s, "encoder.mid.attn_1", block_in)
    _vae_resblock(s, "encoder.mid.block_2", block_in, block_in)
    _norm(s, "encoder.norm_out", block_in)
    _conv(s, "encoder.conv_out", 2 * z_channels, block_in, 3)  # double_z
    # Decoder
    block_in = ch * ch_mult[-1]
    _conv(s, "decoder.conv_in", block_in, z_channels, 3)
    _vae_resblock(s, "decoder.mid.block_1", block_in, block_in)
    _vae_attn(s, "decoder.mid.attn_1", block_in)
    _vae_resblock(s, "decoder.mid.block_2", block_in, block_in)
    ups: dict[int, Shapes] = {}
    for i in reversed(range(n)):  # built deepest first, stored as up[i] (ModuleList.insert(0, ...))
        u: Shapes = {}
        block_out = ch * ch_mult[i]
        for j in range(num_res_blocks + 1):
            _vae_resblock(u, f"decoder.up.{i}.block.{j}", block_in, block_out)
            block_in = block_out
        if i != 0:
            _conv(u, f"decoder.up.{i}.upsample.conv", block_in, block_in, 3)
        ups[i] = u
    for i in range(n):
        s.update(ups[i])
    _norm(s, "decoder.norm_out", block_in)
    _conv(s, "decoder.conv_out", out_ch, block_in, 3)
    _conv(s, "quant_conv", 2 * embed_dim, 2 * z_channels, 1)
    _conv(s, "post_quant_conv", z_channels, embed_dim, 1)
    return s


# --------------------------------------------------------------------------------------------------
# Hugging Face CLIP (transformers CLIPTextModel / CLIPVisionModelWithProjection, 4.x file layout)
# --------------------------------------------------------------------------------------------------
def _clip_encoder(s: Shapes, prefix: str, layers: int, hidden: int, mlp: int) -> None:
    for i in range(layers):
        p = f"{prefix}encoder.layers.{i}"
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            _linear(s, f"{p}.self_attn.{proj}", hidden, hidden)
        _norm(s, f"{p}.layer_norm1", hidden)
        _linear(s, f"{p}.mlp.fc1", mlp, hidden)
        _linear(s, f"{p}.mlp.fc2", hidden, mlp)
        _norm(s, f"{p}.layer_norm2", hidden)


def clip_l_text_shapes(
    with_position_ids: bool = False,
    hidden_size: int = 768,
    num_layers: int = 12,
    intermediate_size: int = 3072,
    vocab_size: int = 49408,
    max_positions: int = 77,
) -> Shapes:
    """HF ``CLIPTextModel`` keys with the ``text_model.`` prefix (defaults: ViT-L/14, 123,060,480 params).

    ``with_position_ids`` adds the (1, 77) int64 ``text_model.embeddings.position_ids`` buffer that
    files written by transformers < 4.31 (e.g. every SD-1.x checkpoint) contain.
    """
    s: Shapes = {}
    s["text_model.embeddings.token_embedding.weight"] = (vocab_size, hidden_size)
    s["text_model.embeddings.position_embedding.weight"] = (max_positions, hidden_size)
    if with_position_ids:
        s["text_model.embeddings.position_ids"] = (1, max_positions)
    _clip_encoder(s, "text_model.", num_layers, hidden_size, intermediate_size)
    _norm(s, "text_model.final_layer_norm", hidden_size)
    return s


def clip_vision_vit_l_shapes(
    with_position_ids: bool = False,
    hidden_size: int = 1024,
    num_layers: int = 24,
    intermediate_size: int = 4096,
    image_size: int = 224,
    patch_size: int = 14,
    projection_dim: int = 768,
) -> Shapes:
    """HF ``CLIPVisionModelWithProjection`` keys (defaults: ViT-L/14 224px, 303,966,208 params)."""
    num_positions = (image_size // patch_size) ** 2 + 1
    s: Shapes = {}
    s["vision_model.embeddings.class_embedding"] = (hidden_size,)
    s["vision_model.embeddings.patch_embedding.weight"] = (hidden_size, 3, patch_size, patch_size)
    s["vision_model.embeddings.position_embedding.weight"] = (num_positions, hidden_size)
    if with_position_ids:
        s["vision_model.embeddings.position_ids"] = (1, num_positions)
    _norm(s, "vision_model.pre_layrnorm", hidden_size)  # sic: the real HF attribute name
    _clip_encoder(s, "vision_model.", num_layers, hidden_size, intermediate_size)
    _norm(s, "vision_model.post_layernorm", hidden_size)
    s["visual_projection.weight"] = (projection_dim, hidden_size)
    return s


# --------------------------------------------------------------------------------------------------
# AnimateDiff motion modules (guoyww animatediff/models/motion_module.py, original file layout)
# --------------------------------------------------------------------------------------------------
def _temporal_transformer(s: Shapes, name: str, c: int, pe_len: int) -> None:
    """VanillaTemporalModule.temporal_transformer (1 block, Temporal_Self x2, geglu FF)."""
    t = f"{name}.temporal_transformer"
    _norm(s, f"{t}.norm", c)  # GroupNorm(32, c)
    _linear(s, f"{t}.proj_in", c, c)
    b = f"{t}.transformer_blocks.0"
    for a in (0, 1):
        ab = f"{b}.attention_blocks.{a}"
        _linear(s, f"{ab}.to_q", c, c, bias=False)
        _linear(s, f"{ab}.to_k", c, c, bias=False)
        _linear(s, f"{ab}.to_v", c, c, bias=False)
        _linear(s, f"{ab}.to_out.0", c, c)
        s[f"{ab}.pos_encoder.pe"] = (1, pe_len, c)
    _norm(s, f"{b}.norms.0", c)
    _norm(s, f"{b}.norms.1", c)
    _linear(s, f"{b}.ff.net.0.proj", 8 * c, c)  # GEGLU
    _linear(s, f"{b}.ff.net.2", c, 4 * c)
    _norm(s, f"{b}.ff_norm", c)
    _linear(s, f"{t}.proj_out", c, c)


def _mm_config(
    version: str, block_out_channels: Sequence[int] | None, max_seq_length: int | None
) -> tuple[tuple[int, ...], int, bool]:
    if version not in MOTION_MODULE_VERSIONS:
        known = sorted(MOTION_MODULE_VERSIONS)
        raise ValueError(f"unknown motion module version {version!r}; known: {known}")
    chans, pe_len, mid = MOTION_MODULE_VERSIONS[version]
    if block_out_channels is not None:
        chans = tuple(block_out_channels)
    if max_seq_length is not None:
        pe_len = max_seq_length
    return chans, pe_len, mid


def motion_module_shapes(
    version: str = "v2",
    block_out_channels: Sequence[int] | None = None,
    layers_per_block: int = 2,
    max_seq_length: int | None = None,
) -> Shapes:
    """Keys/shapes of an original AnimateDiff motion-module file.

    ``version``: "v1" (pe 24, no mid), "v2" (pe 32, mid block), "v3" (pe 32, no mid), "sdxl"
    (mm_sdxl_v10_beta: channels (320, 640, 1280), pe 32, no mid).  ``block_out_channels=None`` uses the
    version's channels; ``max_seq_length`` overrides the pe length.
    """
    chans, pe_len, mid = _mm_config(version, block_out_channels, max_seq_length)
    s: Shapes = {}
    for i, c in enumerate(chans):
        for j in range(layers_per_block):
            _temporal_transformer(s, f"down_blocks.{i}.motion_modules.{j}", c, pe_len)
    for i, c in enumerate(reversed(chans)):
        for j in range(layers_per_block + 1):
            _temporal_transformer(s, f"up_blocks.{i}.motion_modules.{j}", c, pe_len)
    if mid:
        _temporal_transformer(s, "mid_block.motion_modules.0", chans[-1], pe_len)
    return s


def sinusoidal_pe(channels: int, length: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """AnimateDiff ``PositionalEncoding.pe``: (1, length, channels) sin/cos table, computed in float32."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, channels, 2, dtype=torch.float32) * (-math.log(10000.0) / channels))
    pe = torch.zeros(1, length, channels, dtype=torch.float32)
    pe[0, :, 0::2] = torch.sin(position * div_term)
    pe[0, :, 1::2] = torch.cos(position * div_term)
    return pe.to(dtype)


# --------------------------------------------------------------------------------------------------
# tensor generation
# --------------------------------------------------------------------------------------------------
_NORM_WEIGHT_RE = re.compile(
    r"(?:^|\.)(?:norm\w*|\w+_norm\w*|layer_norm\d*|pre_layrnorm|post_layernorm|ln_\w+|norms\.\d+"
    r"|in_layers\.0|out_layers\.0|out\.0)\.weight$"
)


def _is_norm_weight(key: str, shape: tuple[int, ...]) -> bool:
    return len(shape) == 1 and _NORM_WEIGHT_RE.search(key) is not None


def _generator(seed: int, stream: str) -> torch.Generator:
    """A CPU generator for one named component, so components do not shift each other's values."""
    return torch.Generator().manual_seed((seed * 1_000_003 + zlib.crc32(stream.encode())) % (2**63))


def param_count(shapes: Mapping[str, Sequence[int]]) -> int:
    """Total number of elements described by a shapes dict."""
    return sum(math.prod(s) for s in shapes.values())


def meta_tensors(
    shapes: Mapping[str, Sequence[int]], dtype: torch.dtype = torch.float16, prefix: str = ""
) -> dict[str, torch.Tensor]:
    """Shape-only tensors on the ``meta`` device (``position_ids`` as int64)."""
    return {
        prefix + k: torch.empty(
            tuple(s), dtype=torch.int64 if k.endswith("position_ids") else dtype, device="meta"
        )
        for k, s in shapes.items()
    }


def random_tensors(
    shapes: Mapping[str, Sequence[int]],
    *,
    dtype: torch.dtype = torch.float16,
    seed: int = 0,
    std: float = 0.02,
    prefix: str = "",
    stream: str = "",
    device: str | torch.device = "cpu",
) -> dict[str, torch.Tensor]:
    """Random tensors for ``shapes`` (keys get ``prefix``); normal(0, std) generated directly in ``dtype``.

    Norm-layer 1-D weights are ``1 + noise``; ``*position_ids`` are int64 ``arange`` buffers.
    ``device="meta"`` returns shape-only tensors.  ``stream`` names an independent random stream.
    """
    device = torch.device(device)
    if device.type == "meta":
        return meta_tensors(shapes, dtype=dtype, prefix=prefix)
    g = _generator(seed, stream or prefix)
    out: dict[str, torch.Tensor] = {}
    for k, shape in shapes.items():
        shape = tuple(shape)
        if k.endswith("position_ids"):
            out[prefix + k] = torch.arange(shape[-1], dtype=torch.int64).expand(shape).clone()
            continue
        t = torch.empty(shape, dtype=dtype)
        t.normal_(0.0, std, generator=g)
        if _is_norm_weight(k, shape):
            t.add_(1.0)
        out[prefix + k] = t if device.type == "cpu" else t.to(device)
    return out


def ldm_schedule_buffers(
    dtype: torch.dtype = torch.float32,
    timesteps: int = 1000,
    linear_start: float = 0.00085,
    linear_end: float = 0.012,
) -> dict[str, torch.Tensor]:
    """The DDPM schedule buffers LDM stores (SD-1.x "linear" = scaled-linear schedule), float64 math."""
    betas = torch.linspace(linear_start**0.5, linear_end**0.5, timesteps, dtype=torch.float64) ** 2
    alphas = 1.0 - betas
    ac = torch.cumprod(alphas, dim=0)
    ac_prev = torch.cat([torch.ones(1, dtype=torch.float64), ac[:-1]])
    post_var = betas * (1.0 - ac_prev) / (1.0 - ac)  # v_posterior = 0
    vals = {
        "betas": betas,
        "alphas_cumprod": ac,
        "alphas_cumprod_prev": ac_prev,
        "sqrt_alphas_cumprod": ac.sqrt(),
        "sqrt_one_minus_alphas_cumprod": (1.0 - ac).sqrt(),
        "log_one_minus_alphas_cumprod": (1.0 - ac).log(),
        "sqrt_recip_alphas_cumprod": (1.0 / ac).sqrt(),
        "sqrt_recipm1_alphas_cumprod": (1.0 / ac - 1.0).sqrt(),
        "posterior_variance": post_var,
        "posterior_log_variance_clipped": post_var.clamp(min=1e-20).log(),
        "posterior_mean_coef1": betas * ac_prev.sqrt() / (1.0 - ac),
        "posterior_mean_coef2": (1.0 - ac_prev) * alphas.sqrt() / (1.0 - ac),
    }
    assert tuple(vals) == LDM_SCHEDULE_BUFFER_NAMES
    # LDM registers them as float32 tensors; a whole-dict .half() makes them float16.
    return {k: v.to(torch.float32).to(dtype) for k, v in vals.items()}


def ldm_checkpoint_tensors(
    unet_shapes: Mapping[str, Sequence[int]] | None = None,
    *,
    with_ema: bool = False,
    with_vae: bool = False,
    with_text_encoder: bool = False,
    with_schedule_buffers: bool = False,
    dtype: torch.dtype = torch.float16,
    seed: int = 0,
    vae_shapes: Mapping[str, Sequence[int]] | None = None,
    text_encoder_shapes: Mapping[str, Sequence[int]] | None = None,
    text_position_ids: bool = True,
    ema_num_updates: int = 22000,
    device: str | torch.device = "cpu",
) -> dict[str, torch.Tensor]:
    """An original single-file LDM (SD-1.x / InstructPix2Pix) checkpoint state dict.

    * ``model.diffusion_model.<k>`` for every UNet key (``unet_shapes=None``: SD-1.5).
    * ``with_ema``: LitEma copies ``model_ema.diffusion_model<k without dots>`` (different random
      values) plus ``model_ema.decay`` (float) and ``model_ema.num_updates`` (int32) scalars.
    * ``with_vae``: ``first_stage_model.`` + ``vae_shapes`` (default :func:`sd_vae_shapes`).
    * ``with_text_encoder``: ``cond_stage_model.transformer.`` + ``text_encoder_shapes`` (default
      :func:`clip_l_text_shapes` with the int64 ``position_ids`` buffer when ``text_position_ids``).
    * ``with_schedule_buffers``: the 12 DDPM buffers (1000,) (real SD-1.5 values, in ``dtype``).
    Order follows ``LatentDiffusion.state_dict()``; ``device="meta"`` gives shape-only tensors.
    """
    if unet_shapes is None:
        unet_shapes = ldm_unet_shapes()
    meta = torch.device(device).type == "meta"
    out: dict[str, torch.Tensor] = {}
    if with_schedule_buffers:
        for k, v in ldm_schedule_buffers(dtype).items():
            out[k] = torch.empty(v.shape, dtype=dtype, device="meta") if meta else v
    out.update(random_tensors(unet_shapes, dtype=dtype, seed=seed, prefix=LDM_UNET_PREFIX, device=device))
    if with_ema:
        ema = random_tensors(unet_shapes, dtype=dtype, seed=seed, stream="model_ema", device=device)
        for k, v in ema.items():
            out[LDM_EMA_PREFIX + "diffusion_model" + k.replace(".", "")] = v
        if meta:
            out["model_ema.decay"] = torch.empty((), dtype=dtype, device="meta")
            out["model_ema.num_updates"] = torch.empty((), dtype=torch.int32, device="meta")
        else:
            out["model_ema.decay"] = torch.tensor(0.9999, dtype=torch.float32).to(dtype)
            out["model_ema.num_updates"] = torch.tensor(ema_num_updates, dtype=torch.int32)
    if with_vae:
        vs = sd_vae_shapes() if vae_shapes is None else vae_shapes
        out.update(random_tensors(vs, dtype=dtype, seed=seed, prefix=LDM_VAE_PREFIX, device=device))
    if with_text_encoder:
        ts = text_encoder_shapes
        if ts is None:
            ts = clip_l_text_shapes(with_position_ids=text_position_ids)
        out.update(random_tensors(ts, dtype=dtype, seed=seed, prefix=LDM_TEXT_PREFIX, device=device))
    return out


def motion_module_tensors(
    version: str = "v2",
    block_out_channels: Sequence[int] | None = None,
    layers_per_block: int = 2,
    max_seq_length: int | None = None,
    *,
    dtype: torch.dtype = torch.float16,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, torch.Tensor]:
    """Random original-layout AnimateDiff motion-module tensors; ``pos_encoder.pe`` = real sin/cos table."""
    shapes = motion_module_shapes(version, block_out_channels, layers_per_block, max_seq_length)
    if torch.device(device).type == "meta":
        return meta_tensors(shapes, dtype=dtype)
    pe_keys = [k for k in shapes if k.endswith(".pos_encoder.pe")]
    rand = random_tensors(
        {k: s for k, s in shapes.items() if not k.endswith(".pos_encoder.pe")},
        dtype=dtype,
        seed=seed,
        stream=f"motion_module_{version}",
    )
    pe_cache: dict[tuple[int, int], torch.Tensor] = {}
    out: dict[str, torch.Tensor] = {}
    for k, s in shapes.items():
        if k in pe_keys:
            _, length, c = s
            if (c, length) not in pe_cache:
                pe_cache[(c, length)] = sinusoidal_pe(c, length, dtype)
            out[k] = pe_cache[(c, length)].clone()  # separate storage per key (safetensors-friendly)
        else:
            out[k] = rand[k]
    return out


# --------------------------------------------------------------------------------------------------
# SDXL (Stability sgm single file): representative subset with real key names and shapes
# --------------------------------------------------------------------------------------------------
def _sdxl_subset_shapes(with_token_embeddings: bool) -> Shapes:
    s: Shapes = {}
    u = "model.diffusion_model."
    _linear(s, f"{u}time_embed.0", 1280, 320)
    _linear(s, f"{u}time_embed.2", 1280, 1280)
    _linear(s, f"{u}label_emb.0.0", 1280, 2816)  # adm_in_channels = 2816
    _linear(s, f"{u}label_emb.0.2", 1280, 1280)
    _conv(s, f"{u}input_blocks.0.0", 320, 4, 3)
    _conv(s, f"{u}input_blocks.3.0.op", 320, 320, 3)
    # input_blocks.4.0: ResBlock 320 -> 640 (first keys and the skip connection only)
    _norm(s, f"{u}input_blocks.4.0.in_layers.0", 320)
    _conv(s, f"{u}input_blocks.4.0.in_layers.2", 640, 320, 3)
    _linear(s, f"{u}input_blocks.4.0.emb_layers.1", 640, 1280)
    _conv(s, f"{u}input_blocks.4.0.skip_connection", 640, 320, 1)
    # input_blocks.4.1: SpatialTransformer(640, depth 2, context 2048, use_linear_in_transformer)
    a = f"{u}input_blocks.4.1"
    _norm(s, f"{a}.norm", 640)
    _linear(s, f"{a}.proj_in", 640, 640)
    b = f"{a}.transformer_blocks.0"
    _linear(s, f"{b}.attn1.to_q", 640, 640, bias=False)
    _linear(s, f"{b}.attn2.to_q", 640, 640, bias=False)
    _linear(s, f"{b}.attn2.to_k", 640, 2048, bias=False)
    _linear(s, f"{b}.attn2.to_v", 640, 2048, bias=False)
    _linear(s, f"{b}.attn2.to_out.0", 640, 640)
    _norm(s, f"{b}.norm1", 640)
    _linear(s, f"{a}.transformer_blocks.1.attn2.to_k", 640, 2048, bias=False)
    _linear(s, f"{a}.proj_out", 640, 640)
    # depth-10 transformers at 1280 channels
    _linear(s, f"{u}input_blocks.7.1.transformer_blocks.9.attn2.to_k", 1280, 2048, bias=False)
    _norm(s, f"{u}middle_block.1.transformer_blocks.9.norm3", 1280)
    _norm(s, f"{u}out.0", 320)
    _conv(s, f"{u}out.2", 4, 320, 3)
    # conditioner.embedders.0: CLIP ViT-L text (HF layout)
    e0 = "conditioner.embedders.0.transformer.text_model."
    if with_token_embeddings:
        s[f"{e0}embeddings.token_embedding.weight"] = (49408, 768)
    s[f"{e0}embeddings.position_embedding.weight"] = (77, 768)
    _linear(s, f"{e0}encoder.layers.0.self_attn.k_proj", 768, 768)
    _linear(s, f"{e0}encoder.layers.0.self_attn.q_proj", 768, 768)
    _norm(s, f"{e0}encoder.layers.0.layer_norm1", 768)
    _linear(s, f"{e0}encoder.layers.0.mlp.fc1", 3072, 768)
    _norm(s, f"{e0}encoder.layers.11.layer_norm2", 768)
    _norm(s, f"{e0}final_layer_norm", 768)
    # conditioner.embedders.1: OpenCLIP ViT-bigG text (open_clip layout)
    e1 = "conditioner.embedders.1.model."
    s[f"{e1}positional_embedding"] = (77, 1280)
    s[f"{e1}text_projection"] = (1280, 1280)
    if with_token_embeddings:
        s[f"{e1}token_embedding.weight"] = (49408, 1280)
    r = f"{e1}transformer.resblocks.0"
    _norm(s, f"{r}.ln_1", 1280)
    s[f"{r}.attn.in_proj_weight"] = (3840, 1280)
    s[f"{r}.attn.in_proj_bias"] = (3840,)
    _linear(s, f"{r}.attn.out_proj", 1280, 1280)
    _norm(s, f"{r}.ln_2", 1280)
    s[f"{r}.mlp.c_fc.bias"] = (5120,)
    s[f"{r}.mlp.c_proj.bias"] = (1280,)
    s[f"{e1}transformer.resblocks.9.mlp.c_proj.bias"] = (1280,)  # diffusers' SDXL-base marker key
    _norm(s, f"{e1}transformer.resblocks.31.ln_2", 1280)
    _norm(s, f"{e1}ln_final", 1280)
    s[f"{e1}logit_scale"] = ()
    # first stage (same LDM VAE architecture as SD-1.x)
    vae = sd_vae_shapes()
    for k in ("encoder.conv_in.weight", "encoder.conv_in.bias", "decoder.conv_out.weight",
              "decoder.conv_out.bias", "quant_conv.weight", "quant_conv.bias",
              "post_quant_conv.weight", "post_quant_conv.bias"):
        s[f"first_stage_model.{k}"] = vae[k]
    return s


def sdxl_checkpoint_tensors(
    dtype: torch.dtype = torch.float16, *, seed: int = 0, with_token_embeddings: bool = True
) -> dict[str, torch.Tensor]:
    """A representative subset of an SDXL base single-file checkpoint (real key names and shapes).

    82 keys, 132.8 M elements (~266 MB in fp16) with both token embeddings, which alone are 101.2 M
    (real shapes cannot be smaller); ``with_token_embeddings=False`` drops those two keys
    (31.6 M elements, ~63 MB).
    """
    return random_tensors(_sdxl_subset_shapes(with_token_embeddings), dtype=dtype, seed=seed, stream="sdxl")


# --------------------------------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------------------------------
_TORCH_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


def save_tensors(
    path: str | os.PathLike[str],
    tensors: Mapping[str, torch.Tensor],
    fmt: str | None = None,
    *,
    wrap_state_dict: bool = False,
    global_step: int = 22000,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write ``tensors`` to ``path``; ``fmt`` "safetensors" / "torch", or None to pick by suffix.

    ``.safetensors`` -> ``safetensors.torch.save_file`` (contiguous CPU tensors, optional
    ``metadata``); ``.ckpt``/``.pt``/``.pth``/``.bin`` -> ``torch.save`` of the plain dict, or of the
    LDM-style ``{"state_dict": tensors, "global_step": global_step}`` when ``wrap_state_dict``.
    """
    path = Path(path)
    if fmt is None:
        suffix = path.suffix.lower()
        if suffix == ".safetensors":
            fmt = "safetensors"
        elif suffix in _TORCH_SUFFIXES:
            fmt = "torch"
        else:
            raise ValueError(f"cannot infer the format from suffix {path.suffix!r}; pass fmt=")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "safetensors":
        if wrap_state_dict:
            raise ValueError("wrap_state_dict only applies to torch pickles")
        flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        save_file(flat, str(path), metadata=metadata)
    elif fmt == "torch":
        sd = dict(tensors)
        torch.save({"state_dict": sd, "global_step": global_step} if wrap_state_dict else sd, str(path))
    else:
        raise ValueError(f"unknown fmt {fmt!r} (expected 'safetensors' or 'torch')")
    return path


def truncate_file(
    path: str | os.PathLike[str],
    keep_fraction: float = 0.5,
    dest: str | os.PathLike[str] | None = None,
) -> Path:
    """Write a corrupt copy holding the first ``keep_fraction`` of ``path``'s bytes; return its path.

    ``dest=None`` writes ``<stem>.truncated<suffix>`` next to the source (same suffix, so format
    detection by extension still applies); ``dest == path`` truncates in place.
    """
    if not 0.0 <= keep_fraction < 1.0:
        raise ValueError("keep_fraction must be in [0, 1)")
    src = Path(path)
    dst = src.with_name(f"{src.stem}.truncated{src.suffix}") if dest is None else Path(dest)
    keep = int(src.stat().st_size * keep_fraction)
    if dst.resolve() == src.resolve():
        os.truncate(src, keep)
        return src
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        remaining = keep
        while remaining > 0:
            chunk = fi.read(min(remaining, 16 << 20))
            if not chunk:
                break
            fo.write(chunk)
            remaining -= len(chunk)
    return dst


def _iter_counts() -> Iterable[tuple[str, int, int]]:
    """(name, keys, parameters) of the full-size formats; handy for ``python fixture_files.py``."""
    yield "sd15_unet", len(ldm_unet_shapes()), param_count(ldm_unet_shapes())
    yield "sd15_vae", len(sd_vae_shapes()), param_count(sd_vae_shapes())
    yield "clip_l_text", len(clip_l_text_shapes()), param_count(clip_l_text_shapes())
    yield "clip_vit_l_vision", len(clip_vision_vit_l_shapes()), param_count(clip_vision_vit_l_shapes())
    for v in MOTION_MODULE_VERSIONS:
        mm = motion_module_shapes(v)
        yield f"motion_module_{v}", len(mm), param_count(mm)
    sx = _sdxl_subset_shapes(True)
    yield "sdxl_subset", len(sx), param_count(sx)


if __name__ == "__main__":
    for name, nkeys, nparams in _iter_counts():
        print(f"{name:20s} keys={nkeys:5d} params={nparams:,}")


# --------------------------------------------------------------------------------------------------
# LoRA (kohya layout: diffusers UNet names, `lora_unet_<name with _>.lora_down/.lora_up/.alpha`)
# --------------------------------------------------------------------------------------------------
KOHYA_SD15_TARGETS = {  # diffusers name -> (out, in, 1x1 conv)
    "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q": (320, 320, False),
    "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k": (320, 768, False),
    "up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_v": (320, 768, False),
    "mid_block.attentions.0.proj_in": (1280, 1280, True),
}


def kohya_lora_tensors(targets: Mapping[str, tuple[int, int, bool]] | None = None, rank: int = 4,
                       alpha: float = 2.0, *, seed: int = 0) -> dict[str, torch.Tensor]:
    """A kohya-layout SD-1.5 UNet LoRA (fp16) on `targets` (default a few SD-1.5 attention layers)."""
    g = _generator(seed, "kohya_lora")
    out: dict[str, torch.Tensor] = {}
    for name, (out_f, in_f, conv) in (targets or KOHYA_SD15_TARGETS).items():
        key = "lora_unet_" + name.replace(".", "_")
        down = torch.randn(rank, in_f, generator=g) * 0.3
        up = torch.randn(out_f, rank, generator=g) * 0.3
        out[f"{key}.lora_down.weight"] = (down[:, :, None, None] if conv else down).half()
        out[f"{key}.lora_up.weight"] = (up[:, :, None, None] if conv else up).half()
        out[f"{key}.alpha"] = torch.tensor(alpha, dtype=torch.float16)
    return out
