"""AnimateDiff's temporal layer in its original form (guoyww/AnimateDiff `animatediff/models/motion_module.py`,
`VanillaTemporalModule`), built from an `operations` namespace so a host can supply its own layer classes
(ComfyUI's `comfy.ops`: fp8/bf16 storage, manual cast, low-VRAM partial loading) and its own attention.

Parameter names are the original file's (`temporal_transformer.proj_in.weight`, `...attention_blocks.0.to_q`,
`...pos_encoder.pe`), so a motion-module file loads into it by name. What it computes, per module:
"(b f) c h w" frames -> GroupNorm(32, eps 1e-6) per frame -> proj_in -> for each of two attention blocks:
LayerNorm -> "(b f) d c -> (b d) f c" + sinusoidal table -> self-attention over the f frames -> to_out, + residual;
LayerNorm -> GEGLU feed-forward, + residual -> proj_out -> + the input.

The library's diffusers model (`VIDiffModel`) is the reference: parity tests tie the two (tests/test_host_model.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from .errors import LatentError

# attention(q, k, v, heads) on (N, L, heads·d) tensors -> (N, L, heads·d): ComfyUI's `optimized_attention` signature
Attention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]
GROUP_NORM_GROUPS, GROUP_NORM_EPS, LAYER_NORM_EPS = 32, 1e-6, 1e-5  # motion_module.py's defaults


def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head attention with scale d^-½ (torch's scaled_dot_product_attention)."""
    n, length, inner = q.shape
    split = lambda t: t.reshape(n, -1, heads, inner // heads).transpose(1, 2)  # noqa: E731  (N, heads, L, d)
    out = F.scaled_dot_product_attention(split(q), split(k), split(v))
    return out.transpose(1, 2).reshape(n, length, inner)


# torch's own layers; a host passes its namespace with the same three classes (constructors take dtype, device)
TORCH_OPS = SimpleNamespace(Linear=nn.Linear, GroupNorm=nn.GroupNorm, LayerNorm=nn.LayerNorm)


def sinusoidal_table(channels: int, length: int) -> torch.Tensor:
    """`PositionalEncoding.pe`: (1, length, channels) sin/cos table, float32."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, channels, 2, dtype=torch.float32) * (-math.log(10000.0) / channels))
    pe = torch.zeros(1, length, channels)
    pe[0, :, 0::2] = torch.sin(position * div)
    pe[0, :, 1::2] = torch.cos(position * div)
    return pe


class PositionalEncoding(nn.Module):
    """Adds the frame-position table; `pe` is a buffer (the file's copy is loaded over it).

    The table follows the input's device as well as its dtype: a module holding only a buffer is one a host's
    low-VRAM loader never moves (ComfyUI moves or casts modules with weights), so `pe` may sit on the CPU while
    the frames are on the GPU."""

    def __init__(self, channels: int, max_len: int, device=None):
        super().__init__()
        self.register_buffer("pe", sinusoidal_table(channels, max_len).to(device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, F, C)
        return x + self.pe[:, :x.shape[1]].to(device=x.device, dtype=x.dtype)


class TemporalAttention(nn.Module):
    """`VersatileAttention` with attention_mode "Temporal": every spatial position attends over the frames."""

    def __init__(self, channels: int, heads: int, max_len: int, ops, attention: Attention, dtype=None, device=None):
        super().__init__()
        self.heads, self.attention = heads, attention
        kw = dict(dtype=dtype, device=device)
        self.to_q = ops.Linear(channels, channels, bias=False, **kw)
        self.to_k = ops.Linear(channels, channels, bias=False, **kw)
        self.to_v = ops.Linear(channels, channels, bias=False, **kw)
        self.to_out = nn.ModuleList([ops.Linear(channels, channels, **kw)])  # [1] is a dropout in the original
        self.pos_encoder = PositionalEncoding(channels, max_len, device)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        bf, d, c = x.shape  # ((B·F), H·W, C)
        seq = x.reshape(bf // frames, frames, d, c).transpose(1, 2).reshape(-1, frames, c)  # (B·H·W, F, C)
        seq = self.pos_encoder(seq)
        out = self.to_out[0](self.attention(self.to_q(seq), self.to_k(seq), self.to_v(seq), self.heads))
        return out.reshape(bf // frames, d, frames, c).transpose(1, 2).reshape(bf, d, c)


class GEGLU(nn.Module):
    def __init__(self, dim_in: int, dim_out: int, ops, dtype=None, device=None):
        super().__init__()
        self.proj = ops.Linear(dim_in, dim_out * 2, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, channels: int, ops, dtype=None, device=None):
        super().__init__()
        # net.1 is a dropout in the original: an Identity keeps net.2's name
        self.net = nn.ModuleList([GEGLU(channels, 4 * channels, ops, dtype, device), nn.Identity(),
                                  ops.Linear(4 * channels, channels, dtype=dtype, device=device)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class TemporalTransformerBlock(nn.Module):
    def __init__(self, channels: int, heads: int, max_len: int, ops, attention: Attention, dtype=None, device=None):
        super().__init__()
        self.attention_blocks = nn.ModuleList(
            [TemporalAttention(channels, heads, max_len, ops, attention, dtype, device) for _ in range(2)])
        self.norms = nn.ModuleList(
            [ops.LayerNorm(channels, eps=LAYER_NORM_EPS, dtype=dtype, device=device) for _ in range(2)])
        self.ff = FeedForward(channels, ops, dtype, device)
        self.ff_norm = ops.LayerNorm(channels, eps=LAYER_NORM_EPS, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        for attention, norm in zip(self.attention_blocks, self.norms):
            x = attention(norm(x), frames) + x
        return self.ff(self.ff_norm(x)) + x


class TemporalTransformer(nn.Module):
    def __init__(self, channels: int, heads: int, max_len: int, ops, attention: Attention, dtype=None, device=None,
                 clip_norm: bool = False):
        super().__init__()
        self.clip_norm = clip_norm
        kw = dict(dtype=dtype, device=device)
        self.norm = ops.GroupNorm(GROUP_NORM_GROUPS, channels, eps=GROUP_NORM_EPS, affine=True, **kw)
        self.proj_in = ops.Linear(channels, channels, **kw)
        self.transformer_blocks = nn.ModuleList(
            [TemporalTransformerBlock(channels, heads, max_len, ops, attention, dtype, device)])
        self.proj_out = ops.Linear(channels, channels, **kw)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        bf, c, h, w = x.shape  # frames of the clips, "(b f) c h w"
        if self.clip_norm:  # statistics over the clip: what files made before the per-frame fix were trained with
            video = x.reshape(bf // frames, frames, c, h, w).transpose(1, 2)  # (B, C, F, H, W)
            hs = self.norm(video).transpose(1, 2).reshape(bf, c, h, w)
        else:
            hs = self.norm(x)  # per frame: the original rearranges to frames before its GroupNorm
        hs = self.proj_in(hs.permute(0, 2, 3, 1).reshape(bf, h * w, c))  # ((B·F), H·W, C)
        for block in self.transformer_blocks:
            hs = block(hs, frames)
        hs = self.proj_out(hs)
        return hs.reshape(bf, h, w, c).permute(0, 3, 1, 2) + x


class TemporalModule(nn.Module):
    """`VanillaTemporalModule`: one temporal transformer over the frames of (B·F, C, H, W) clips.

    Args:
        channels: the UNet block's width; heads: attention heads (8 in every AnimateDiff SD-1.5 module);
        max_len: frames of the positional table (24 for v1, 32 for v2/v3): the most frames one clip may have.
        ops: namespace with Linear, GroupNorm, LayerNorm (TORCH_OPS, or a host's, e.g. comfy.ops.manual_cast).
        attention: (q, k, v, heads) -> out; default torch's SDPA.
        clip_norm: the GroupNorm over all frames of the clip (VIDiff files recording temporal_norm "clip").
    """

    def __init__(self, channels: int, heads: int = 8, max_len: int = 32, ops=TORCH_OPS,
                 attention: Attention = sdpa_attention, dtype=None, device=None, clip_norm: bool = False):
        super().__init__()
        assert channels % heads == 0, f"{channels} channels do not split into {heads} heads"
        self.max_len = max_len
        self.temporal_transformer = TemporalTransformer(channels, heads, max_len, ops, attention, dtype, device,
                                                        clip_norm)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        if x.shape[0] % frames:
            raise LatentError(f"temporal layer: batch {x.shape[0]} is not a whole number of {frames}-frame clips")
        if frames > self.max_len:
            raise LatentError(f"{frames} frames in one clip; this motion module attends over at most {self.max_len}: "
                              "sample longer videos in clips (VIDiffLongVideo)")
        return self.temporal_transformer(x, frames)
