"""Distortion metrics against a reference video: PSNR and SSIM.

Frames are (F, H, W, 3) floats in [0, 1]. Per-video figures are the mean of the per-frame ones (as
video restoration papers report them). SSIM is Wang et al. 2004: Gaussian window σ = 1.5 (11 × 11),
K1 = 0.01, K2 = 0.03, population covariances, per RGB channel then averaged; it matches
scikit-image's `structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1, channel_axis=-1)`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def psnr_per_frame(pred: torch.Tensor, ref: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """(F,) PSNR in dB; inf where a frame is identical."""
    mse = (pred.double() - ref.double()).pow(2).flatten(1).mean(dim=1)
    return 10 * torch.log10(data_range**2 / mse)  # mse 0 -> inf


def _gaussian_window(sigma: float = 1.5, radius: int | None = None) -> torch.Tensor:
    radius = radius if radius is not None else int(3.5 * sigma + 0.5)  # scikit-image's truncate=3.5
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_per_frame(pred: torch.Tensor, ref: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """(F,) mean SSIM over the valid (unpadded) region of each frame, channels averaged."""
    g = _gaussian_window()
    k = g.numel()
    x = pred.double().permute(0, 3, 1, 2)  # (F, 3, H, W)
    y = ref.double().permute(0, 3, 1, 2)
    c = x.shape[1]
    wx = g.view(1, 1, 1, k).expand(c, 1, 1, k)
    wy = g.view(1, 1, k, 1).expand(c, 1, k, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:  # separable Gaussian, "valid" region only
        return F.conv2d(F.conv2d(t, wx, groups=c), wy, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3))


def mean_finite(values: torch.Tensor) -> float:
    """Mean that keeps inf when every frame is identical (PSNR of a perfect video)."""
    v = values.double()
    return math.inf if torch.isinf(v).all() else float(v[torch.isfinite(v)].mean())
