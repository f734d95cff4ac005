"""SD-1.5 / InstructPix2Pix UNets in the original LDM single-file layout (`model.diffusion_model.*`).

The LDM (`openaimodel.UNetModel`) and diffusers layouts name the same tensors differently but one to
one, so the mapping is a pure renaming built from the target model's own key list. Every tensor of
the file is either used (the UNet, or its EMA copy when asked for) or accounted for by name (VAE,
text encoder, EMA copy not used, DDPM schedule buffers); anything else stops the load.
"""

from __future__ import annotations

import re

import torch

from ..config import VideoUNetConfig
from ..errors import CheckpointError
from .detect import FileKind
from .io import TensorFile
from .state import LazyState, LoadReport, check_keys

# ResNet sub-layers: diffusers name -> LDM name.
_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
           "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
_TOP = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
        "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
# Tensors an LDM checkpoint carries besides its UNet, which VIDiff does not use.
_SKIPPED_PREFIXES = {"first_stage_model.": "VAE", "cond_stage_model.": "text encoder"}
_SCHEDULE_BUFFERS = {
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
    "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
    "logvar", "lvlb_weights",
}
_EMA_BOOKKEEPING = {"model_ema.decay", "model_ema.num_updates"}


def _resnet(rest: str) -> str:
    layer, _, param = rest.partition(".")
    return f"{_RESNET[layer]}.{param}"


def diffusers_to_ldm(key: str, config: VideoUNetConfig) -> str:
    """The LDM name of one spatial diffusers UNet tensor (not a motion-module tensor)."""
    n = config.layers_per_block + 1  # LDM blocks per UNet level: L layers + a down/upsampler slot
    attn_up = tuple(reversed(config.cross_attn_blocks))
    for prefix, ldm in _TOP.items():
        if key.startswith(prefix + "."):
            return ldm + key[len(prefix):]
    if m := re.fullmatch(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        i, j, rest = int(m[1]), int(m[2]), m[3]
        return f"input_blocks.{i * n + j + 1}.0.{_resnet(rest)}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", key):
        i, j, rest = int(m[1]), int(m[2]), m[3]
        return f"input_blocks.{i * n + j + 1}.1.{rest}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"input_blocks.{(int(m[1]) + 1) * n}.0.op.{m[2]}"
    if m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"middle_block.{2 * int(m[1])}.{_resnet(m[2])}"
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
        return f"middle_block.1.{m[1]}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        i, j, rest = int(m[1]), int(m[2]), m[3]
        return f"output_blocks.{i * n + j}.0.{_resnet(rest)}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", key):
        i, j, rest = int(m[1]), int(m[2]), m[3]
        return f"output_blocks.{i * n + j}.1.{rest}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        i = int(m[1])
        return f"output_blocks.{i * n + n - 1}.{2 if attn_up[i] else 1}.conv.{m[2]}"
    raise KeyError(f"no LDM name for diffusers UNet key {key}")


def ema_name(ldm_key: str) -> str:
    """LDM's LitEma stores `model.diffusion_model.a.b` as `model_ema.diffusion_modelab`."""
    return "model_ema.diffusion_model" + ldm_key.replace(".", "")


def _inflated(read):
    """A reader of conv_in with zero input channels appended: (C0, 4, 3, 3) -> (C0, 8, 3, 3)."""
    def inflate() -> torch.Tensor:
        w = read()
        return torch.cat([w, torch.zeros_like(w)], dim=1)
    return inflate


def load_ldm_unet(tf: TensorFile, kind: FileKind, expected: dict[str, tuple], config: VideoUNetConfig, *,
                  use_ema: bool = False) -> tuple[LazyState, LoadReport]:
    """Read the spatial UNet of an LDM-layout file as diffusers-named tensors for `UNetMotionModel`.

    Args:
        tf: the open file; kind: what `identify` said it is (its `unet_prefix` is used).
        expected: diffusers name -> shape of the spatial UNet tensors (conv_in with 8 input channels).
        use_ema: read the EMA copy (`model_ema.*`) instead of the raw weights; an error if there is none.
    Returns:
        the state dict, as readers that read each tensor when called (conv_in inflated from 4 to 8
        channels, zeros, when the file is SD-1.5), and a report.
    """
    report = LoadReport(files=[tf.name])
    prefix = kind.unet_prefix
    raw = {prefix + diffusers_to_ldm(k, config): k for k in expected}  # file key -> diffusers name
    ema = {ema_name(k[len(prefix):]): d for k, d in raw.items()} if prefix else {}
    if use_ema and not any(k.startswith("model_ema.diffusion_model") for k in tf.keys()):
        raise CheckpointError(tf.path, "has no EMA weights (no model_ema.* tensors): load it with EMA off")
    source, other = (ema, raw) if use_ema else (raw, ema)

    found: dict[str, tuple] = {}  # the file's tensors that are neither used nor accounted for stay here
    for key, shape in tf.shapes.items():
        if key in source:
            found[key] = shape
        elif key in other:
            report.skip("raw UNet weights (EMA used instead)" if use_ema else "EMA weights (not used)")
        elif key in _EMA_BOOKKEEPING:
            report.skip("EMA bookkeeping (decay, num_updates)")
        elif key in _SCHEDULE_BUFFERS:
            report.skip("DDPM schedule buffers")
        elif reason := next((r for p, r in _SKIPPED_PREFIXES.items() if key.startswith(p)), None):
            report.skip(reason)
        else:
            found[key] = shape
    conv_in_key = next(k for k, d in source.items() if d == "conv_in.weight")
    fmt = f"{'EMA weights of an ' if use_ema else ''}SD-1.5/InstructPix2Pix UNet (LDM layout)"
    check_keys(tf.path, {k: expected[d] for k, d in source.items()}, found, fmt, shape_exempt=(conv_in_key,))

    conv_in, want = found[conv_in_key], expected["conv_in.weight"]  # want: (C0, 8, 3, 3)
    if conv_in[0] != want[0] or conv_in[2:] != want[2:] or conv_in[1] not in (want[1], want[1] // 2):
        raise CheckpointError(tf.path, f"{conv_in_key} is {conv_in}; expected {want} (InstructPix2Pix) "
                                       f"or {(want[0], want[1] // 2) + want[2:]} (SD-1.5)")
    state: LazyState = {source[k]: tf.reader(k) for k in found}
    if conv_in[1] != want[1]:
        # VIDiff's stage-3 start: the source-video channels begin at zero, so the model starts as SD-1.5.
        state["conv_in.weight"] = _inflated(state["conv_in.weight"])
        report.notes.append(f"conv_in inflated from {conv_in[1]} to {want[1]} input channels (new channels zero)")
    report.used = len(state)
    return state, report
