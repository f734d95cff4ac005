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


def _check_frames_of(source: torch.Tensor, **videos: tuple[torch.Tensor, str]) -> None:
    """source must be frames (F, H, W, 3); each named video (tensor, what it should be) of the same shape."""
    if source.ndim != 4 or source.shape[-1] != 3:
        raise VIDiffError(f"source: expected video frames (frames, height, width, 3), got {tuple(source.shape)}")
    for name, (x, what) in videos.items():
        if x.shape != source.shape:
            raise VIDiffError(f"{name}: {tuple(x.shape)} frames do not match source {tuple(source.shape)}; pass "
                              f"{what} of this source (same frames, same size)")


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
    _check_frames_of(source, result=(result, "the decoded result"))
    c = torch.tensor(COLORS[color], dtype=source.dtype, device=source.device)
    towards = c - source
    alpha = ((result - source) * towards).sum(-1) / towards.pow(2).sum(-1).clamp_min(1e-4)
    return (alpha > threshold).to(source.dtype)  # (F, H, W)


def grow_mask(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """(F, H, W) mask dilated by a (2·pixels + 1)² square: the host's GrowMask with tapered_corners off."""
    if pixels <= 0:
        return mask
    return torch.nn.functional.max_pool2d(mask[:, None], 2 * pixels + 1, stride=1, padding=pixels)[:, 0]


def transfer_detail(source: torch.Tensor, result: torch.Tensor, source_round_trip: torch.Tensor,
                    mask: torch.Tensor | None = None, strength: float = 1.0, mask_grow: int = 4) -> torch.Tensor:
    """The decoded result plus the detail the autoencoder lost from the source (frames (F, H, W, 3)).

    result + strength · (source − VAEDecode(VAEEncode(source))). A small autoencoder (vidiff-mini's, /8 with
    4 channels) blurs everything it decodes, the model's result included; what it dropped from the source is
    known exactly, so it is added back. The model's change (colour, haze, a filled hole) stays the model's. Where
    `mask` is 1 (holes the model fills) and `mask_grow` pixels around it, nothing is taken from the source: its
    hole edges are not detail to keep.
    """
    _check_frames_of(source, result=(result, "the decoded result"),
                     source_round_trip=(source_round_trip, "VAEDecode of the VAEEncode"))
    if not 0.0 <= strength <= 2.0:
        raise VIDiffError(f"strength: {strength} is outside 0–2 (1 adds back exactly what the autoencoder lost)")
    if mask_grow < 0:
        raise VIDiffError(f"mask_grow: {mask_grow} pixels; give 0 or more")
    result = result.to(source)
    detail = source - source_round_trip.to(source)  # (F, H, W, 3)
    if mask is not None:
        m = grow_mask(_frames_and_mask(source, mask.to(source.device), ("source", "mask")), mask_grow)
        detail = detail * (1 - m)[..., None]
    return (result + strength * detail).clamp(0, 1)


LUMA = (0.299, 0.587, 0.114)  # BT.601, the weights of the recolor task's gray input


def keep_luminance(source: torch.Tensor, result: torch.Tensor) -> torch.Tensor:
    """The result's colour on the source's brightness (frames (F, H, W, 3)): for recolouring a gray video.

    Every pixel of the result is shifted by the same amount in R, G and B, so its BT.601 luma becomes the
    source's and its colour differences (R − G, B − G) stay the model's. Colourisation pipelines keep the
    input's luminance the same way; the gray input holds it exactly, at full sharpness."""
    _check_frames_of(source, result=(result, "the decoded result"))
    weights = torch.tensor(LUMA, dtype=source.dtype, device=source.device)
    result = result.to(source)
    return (result + ((source - result) @ weights)[..., None]).clamp(0, 1)
