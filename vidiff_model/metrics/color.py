"""Colour metrics for recolouring: Colorfulness and CDC.

Colorfulness: Hasler & Süsstrunk 2003, metric M3 on 0–255 RGB:
    rg = R − G, yb = (R + G)/2 − B
    M = sqrt(σ_rg² + σ_yb²) + 0.3 · sqrt(μ_rg² + μ_yb²)
with population standard deviations over the frame's pixels; per video, the mean over frames.

CDC (TCVC's colour distribution consistency, lower is better): for each RGB channel a 256-bin
histogram per frame (normalised to sum 1); the Jensen–Shannon divergence (natural log) between
frames i and i + d, averaged over i and the three channels, for d ∈ {1, 2, 4}; CDC is the mean of
the three (equal weights). Pairs that do not exist (a video shorter than d + 1 frames) are left out.
"""

from __future__ import annotations

import torch

CDC_OFFSETS = (1, 2, 4)


def colorfulness_per_frame(frames: torch.Tensor) -> torch.Tensor:
    """(F,) colorfulness of (F, H, W, 3) frames in [0, 1]."""
    rgb = frames.double() * 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg, yb = (r - g).flatten(1), (0.5 * (r + g) - b).flatten(1)
    std = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
    mean = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
    return std + 0.3 * mean


def channel_histograms(frames: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """(F, 3, bins) normalised histograms of 8-bit values."""
    q = (frames.double().clamp(0, 1) * 255.0).round().long()  # (F, H, W, 3)
    f = q.shape[0]
    hist = torch.zeros(f, 3, bins, dtype=torch.float64)
    flat = q.reshape(f, -1, 3).permute(0, 2, 1)  # (F, 3, H*W)
    hist.scatter_add_(2, flat, torch.ones_like(flat, dtype=torch.float64))
    return hist / hist.sum(dim=2, keepdim=True)


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen–Shannon divergence along the last axis (natural log; 0 <= JS <= ln 2)."""
    m = 0.5 * (p + q)

    def kl(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(a > 0, a * (torch.log(a.clamp_min(1e-300)) - torch.log(b.clamp_min(1e-300))), 0.0).sum(-1)

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def cdc(frames: torch.Tensor, offsets: tuple[int, ...] = CDC_OFFSETS) -> float:
    """Colour distribution consistency of a video (lower is better); nan for a single frame."""
    hist = channel_histograms(frames)
    per_offset = [js_divergence(hist[:-d], hist[d:]).mean() for d in offsets if hist.shape[0] > d]
    return float(torch.stack(per_offset).mean()) if per_offset else float("nan")
