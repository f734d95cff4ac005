"""What the video UNet's GroupNorms take their statistics over: the one place where VIDiff changes what
diffusers' `UNetMotionModel` computes, so that it computes what the original AnimateDiff does.

The original (guoyww/AnimateDiff, `animatediff/models/`):
- `motion_module.py`, `TemporalTransformer3DModel.forward`: the input is rearranged
  `"b c f h w -> (b f) c h w"` *before* `self.norm(...)`, so the temporal transformer's GroupNorm takes
  its statistics per frame, in every motion-module version. diffusers' `AnimateDiffTransformer3D.forward`
  applies the same `norm` to the 5-D `(b, c, f, h, w)` tensor: statistics over all frames of the clip.
- `resnet.py`, `ResnetBlock3D.__init__`: `norm1`/`norm2` are `InflatedGroupNorm` (per frame, the same
  rearrange around `nn.GroupNorm`) when `use_inflated_groupnorm` is true, otherwise a plain
  `torch.nn.GroupNorm` applied to the 5-D video tensor (all frames together); `unet.py` chooses
  `conv_norm_out` the same way. `configs/inference/inference-v1.yaml` sets `use_inflated_groupnorm: false`
  (v1: `mm_sd_v14`, `mm_sd_v15`), `inference-v2.yaml` and `inference-v3.yaml` set it true. diffusers runs
  its resnets on `(b·f, c, h, w)` frames: per frame. The spatial transformers' `norm` is per frame in both
  (`attention.py`, `Transformer3DModel.forward` rearranges first), so it is left alone.

`VideoUNetConfig.temporal_norm` / `spatial_norm` ("per_frame" | "clip") record which semantics a model
uses. `apply_norm_semantics` keeps diffusers' modules, names and weights (the state dict is unchanged): it
only switches the affected `nn.GroupNorm` modules to a subclass whose `forward` takes other statistics.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import UNetMotionModel
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D
from torch import nn

from .config import VideoUNetConfig


class PerFrameGroupNorm(nn.GroupNorm):
    """GroupNorm with statistics per frame for a (B, C, F, H, W) input (AnimateDiff's temporal `norm`,
    and its `InflatedGroupNorm`); 4-D inputs are plain GroupNorm."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            return super().forward(x)
        b, c, f, h, w = x.shape
        y = super().forward(x.transpose(1, 2).reshape(b * f, c, h, w))  # (B·F, C, H, W): each frame alone
        return y.reshape(b, f, c, h, w).transpose(1, 2)  # (B, C, F, H, W)


class ClipGroupNorm(nn.GroupNorm):
    """GroupNorm of the UNet's (B·F, C, H, W) frames with statistics over all F frames of each clip: the
    original's plain `nn.GroupNorm` on the video tensor (v1). F comes from the UNet's input
    (`record_num_frames`, run before every UNet forward)."""

    num_frames: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.num_frames
        if f is None or x.ndim != 4 or x.shape[0] % f:
            raise RuntimeError(f"ClipGroupNorm: input {tuple(x.shape)} is not (batch·{f} frames, C, H, W); "
                               "call it through the video UNet")
        bf, c, h, w = x.shape
        video = x.reshape(bf // f, f, c, h, w).transpose(1, 2)  # (B, C, F, H, W)
        y = F.group_norm(video, self.num_groups, self.weight, self.bias, self.eps)  # statistics over (C/G, F, H, W)
        return y.transpose(1, 2).reshape(bf, c, h, w)


def record_num_frames(unet: nn.Module, args: tuple, kwargs: dict) -> None:
    """Forward pre-hook of the UNet: tell its ClipGroupNorms how many frames a clip has (input (B, C, F, H, W))."""
    sample = args[0] if args else kwargs["sample"]
    for module in unet.modules():
        if isinstance(module, ClipGroupNorm):
            module.num_frames = int(sample.shape[2])


def _switch(norm: nn.Module, cls: type[nn.GroupNorm]) -> None:
    assert type(norm) in (nn.GroupNorm, cls), f"expected a torch GroupNorm, got {type(norm).__name__}"
    norm.__class__ = cls  # same parameters and names; only `forward` differs


def apply_norm_semantics(unet: UNetMotionModel, config: VideoUNetConfig) -> UNetMotionModel:
    """Make `unet` (just built from `config`) take its GroupNorm statistics as `config` says.

    temporal_norm "per_frame": every motion module's `norm` per frame ("clip" is diffusers' own).
    spatial_norm "clip": every resnet's `norm1`/`norm2` and `conv_norm_out` over the clip's frames
    ("per_frame" is diffusers' own).
    """
    if config.temporal_norm == "per_frame":
        for module in unet.modules():
            if isinstance(module, AnimateDiffTransformer3D):
                _switch(module.norm, PerFrameGroupNorm)
    if config.spatial_norm == "clip":
        for module in unet.modules():
            if isinstance(module, ResnetBlock2D):
                _switch(module.norm1, ClipGroupNorm)
                _switch(module.norm2, ClipGroupNorm)
        _switch(unet.conv_norm_out, ClipGroupNorm)
        unet.register_forward_pre_hook(record_num_frames, with_kwargs=True)
    return unet
