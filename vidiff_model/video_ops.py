"""Pixel-space helpers for task inputs and outputs (frames (F, H, W, 3) in [0, 1], masks (F, H, W))."""

from __future__ import annotations

import torch

from .errors import VIDiffError

COLORS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0), "yellow": (1.0, 1.0, 0.0),
          "cyan": (0.0, 1.0, 1.0), "magenta": (1.0, 0.0, 1.0), "white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0)}
HOLE_FILLS = {"black": 0.0, "gray": 0.5, "white": 1.0}


def _frames_and_mask(images: torch.Tensor, mask: torch.Tensor, names: tuple[str, str]) -> torch.Tensor:
    if images.ndim != 4 or images.shape[-1] != 3:
        raise VIDiffError(f"{names[0]}: expected video frames (frames, height, width, 3), got {tuple(images.shape)}")
    if mask.ndim == 2:
        mask = mask[None]
    f, h, w = images.shape[:3]
    if mask.ndim != 3 or mask.shape[1:] != (h, w) or mask.shape[0] not in (1, f):
        raise VIDiffError(f"{names[1]}: a mask of shape {tuple(mask.shape)} does not fit {f} frames of {w}x{h}; "
                          f"give one mask of {w}x{h} (used for every frame) or {f} of them")
    return mask.to(images.dtype).expand(f, h, w)


def cut_holes(images: torch.Tensor, mask: torch.Tensor, fill: str = "black") -> torch.Tensor:
    """Inpainting input: frames with the masked pixels (mask 1) replaced by a flat `fill` colour."""
    if fill not in HOLE_FILLS:
        raise VIDiffError(f"fill: unknown {fill!r}; choose one of {sorted(HOLE_FILLS)}")
    m = _frames_and_mask(images, mask, ("images", "mask"))[..., None]  # (F, H, W, 1)
    return images * (1 - m) + HOLE_FILLS[fill] * m


def mask_from_marked(source: torch.Tensor, result: torch.Tensor, color: str = "red",
                     threshold: float = 0.25) -> torch.Tensor:
    """Segmentation output -> MASK: the pixels the model painted towards `color`.

    The segmentation target paints the object semi-transparently, result = (1 − a)·source + a·color, so
    a = <result − source, color − source> / |color − source|² estimates the paint per pixel; mask = a > threshold.
    """
    if color not in COLORS:
        raise VIDiffError(f"color: unknown {color!r}; choose one of {sorted(COLORS)}")
    if source.shape != result.shape:
        raise VIDiffError(f"result: {tuple(result.shape)} frames do not match source {tuple(source.shape)}; "
                          "pass the decoded result of this source")
    c = torch.tensor(COLORS[color], dtype=source.dtype, device=source.device)
    towards = c - source
    alpha = ((result - source) * towards).sum(-1) / towards.pow(2).sum(-1).clamp_min(1e-4)
    return (alpha > threshold).to(source.dtype)  # (F, H, W)
