"""Degradations that turn any video into a training source: grayscale, free-form holes, haze, blur.

Frames are (F, H, W, 3) floats in [0, 1]. Every function takes a `torch.Generator`, so a sample is a
pure function of its seed (resume repeats the data exactly). Masks are fixed over the clip, as the
inpainting node uses one mask for every frame.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..video_ops import LUMA as GRAY_WEIGHTS  # ITU-R BT.601 luma, what "make it grayscale" means in most tools
from ..video_ops import cut_holes


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def grayscale(frames: torch.Tensor) -> torch.Tensor:
    """Luma copied to the three channels (the recolor source)."""
    luma = (frames * torch.tensor(GRAY_WEIGHTS, dtype=frames.dtype)).sum(-1, keepdim=True)
    return luma.expand_as(frames).clone()


def free_form_mask(height: int, width: int, g: torch.Generator, *, strokes: tuple[int, int] = (1, 4),
                   max_cover: float = 0.5) -> torch.Tensor:
    """(H, W) mask in {0, 1} of random brush strokes (the free-form masks of DeepFill v2): each stroke is
    a polyline of a few segments drawn with a round brush. Cover is capped at `max_cover` of the frame."""
    yy, xx = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    mask = torch.zeros(height, width)
    n = int(torch.randint(strokes[0], strokes[1] + 1, (), generator=g))
    size = min(height, width)
    for _ in range(n):
        y, x = _uniform(g, 0, height - 1), _uniform(g, 0, width - 1)
        radius = _uniform(g, 0.04, 0.12) * size
        for _ in range(int(torch.randint(2, 6, (), generator=g))):
            angle = _uniform(g, 0, 2 * math.pi)
            length = _uniform(g, 0.1, 0.4) * size
            ny = min(max(y + length * math.sin(angle), 0.0), height - 1.0)
            nx = min(max(x + length * math.cos(angle), 0.0), width - 1.0)
            # distance of every pixel to the segment (y, x) -> (ny, nx)
            dy, dx = ny - y, nx - x
            t = (((yy - y) * dy + (xx - x) * dx) / max(dy * dy + dx * dx, 1e-6)).clamp(0, 1)
            d2 = (yy - (y + t * dy)) ** 2 + (xx - (x + t * dx)) ** 2
            mask = torch.maximum(mask, (d2 <= radius * radius).float())
            if float(mask.mean()) >= max_cover:
                return mask
            y, x = ny, nx
    if float(mask.sum()) == 0:  # a tiny frame can miss every stroke: keep at least one hole
        mask[height // 2, width // 2] = 1.0
    return mask


def inpaint_source(frames: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames with free-form holes (black, like VIDiffCutHoles' default), and the (H, W) mask."""
    mask = free_form_mask(frames.shape[1], frames.shape[2], g)
    return cut_holes(frames, mask, "black"), mask


def depth_like(height: int, width: int, g: torch.Generator) -> torch.Tensor:
    """(H, W) in [0, 1], far at the top: a vertical ramp (scenes recede towards the horizon) plus smooth
    low-frequency noise, as synthetic haze pipelines use when no depth map is available."""
    ramp = torch.linspace(1.0, 0.0, height).view(height, 1).expand(height, width)
    coarse = torch.rand(1, 1, 4, 4, generator=g)
    smooth = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)[0, 0]
    depth = 0.7 * ramp + 0.3 * smooth
    return ((depth - depth.min()) / (depth.max() - depth.min()).clamp_min(1e-6)).clamp(0, 1)


def add_haze(frames: torch.Tensor, g: torch.Generator, *, beta: tuple[float, float] = (0.8, 2.5),
             airlight: tuple[float, float] = (0.7, 1.0)) -> torch.Tensor:
    """Atmospheric scattering model I = J·t + A·(1 − t), t = exp(−β·d) with a depth-like d, fixed over
    the clip (the camera and the air do not change within 16 frames)."""
    t = torch.exp(-_uniform(g, *beta) * depth_like(frames.shape[1], frames.shape[2], g))[None, ..., None]
    a = _uniform(g, *airlight)
    tint = torch.tensor([1.0, 1.0, 1.0]) - torch.rand(3, generator=g) * 0.05  # slightly coloured air
    return (frames * t + a * tint * (1 - t)).clamp(0, 1)


def motion_blur_kernel(length: int, angle: float) -> torch.Tensor:
    """(k, k) normalised line kernel of `length` pixels at `angle` (radians)."""
    k = length if length % 2 == 1 else length + 1
    c = k // 2
    yy, xx = torch.meshgrid(torch.arange(k) - c, torch.arange(k) - c, indexing="ij")
    # distance of each tap to the line through the centre, kept within half the length
    along = xx * math.cos(angle) + yy * math.sin(angle)
    across = -xx * math.sin(angle) + yy * math.cos(angle)
    kernel = ((across.abs() <= 0.5) & (along.abs() <= length / 2)).float()
    return kernel / kernel.sum()


def add_motion_blur(frames: torch.Tensor, g: torch.Generator, *, length: tuple[int, int] = (5, 15)) -> torch.Tensor:
    """Linear camera-motion blur: one line kernel per clip (random length and direction), edge padded."""
    n = int(torch.randint(length[0], length[1] + 1, (), generator=g))
    n = max(1, min(n, min(frames.shape[1], frames.shape[2]) - 1))
    kernel = motion_blur_kernel(n, _uniform(g, 0, math.pi))
    k = kernel.shape[0]
    x = frames.permute(0, 3, 1, 2)  # (F, 3, H, W)
    x = F.pad(x, (k // 2,) * 4, mode="replicate")
    weight = kernel.view(1, 1, k, k).expand(3, 1, k, k)
    return F.conv2d(x, weight, groups=3).permute(0, 2, 3, 1).clamp(0, 1)  # (F, H, W, 3)


def paint_object(frames: torch.Tensor, masks: torch.Tensor, color: tuple[float, float, float],
                 alpha: float = 0.5) -> torch.Tensor:
    """The segmentation target: the object's pixels blended towards `color`,
    (1 − a)·frame + a·color, the form `video_ops.mask_from_marked` reads back. masks: (F, H, W)."""
    m = masks.to(frames.dtype)[..., None] * alpha  # (F, H, W, 1)
    return frames * (1 - m) + torch.tensor(color, dtype=frames.dtype) * m


def augment_image(frame: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """An image instruction from a target frame (H, W, 3): random horizontal flip, a small rotation (±15°)
    and a random crop of 60–100 % of each side, resized back. The model must take the look, not copy pixels."""
    h, w = frame.shape[:2]
    x = frame.permute(2, 0, 1)[None]  # (1, 3, H, W)
    if float(torch.rand((), generator=g)) < 0.5:
        x = x.flip(-1)
    angle = _uniform(g, -15, 15) * math.pi / 180
    theta = torch.tensor([[math.cos(angle), -math.sin(angle), 0.0], [math.sin(angle), math.cos(angle), 0.0]])
    grid = F.affine_grid(theta[None], list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    ch, cw = max(1, round(h * _uniform(g, 0.6, 1.0))), max(1, round(w * _uniform(g, 0.6, 1.0)))
    top, left = int(torch.randint(0, h - ch + 1, (), generator=g)), int(torch.randint(0, w - cw + 1, (), generator=g))
    x = x[..., top:top + ch, left:left + cw]
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return x[0].permute(1, 2, 0).clamp(0, 1)  # (H, W, 3)
