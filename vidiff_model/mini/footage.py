"""A user's own video in a vidiff-mini template: read frame by frame, centre-cropped and resized to the model's
frame size, cut to the template's frame count; and which of the template's degradations such a clip still gets.

The mini templates degrade the clean sample clip (VIDiff Degrade Video) and restore it. A clip of your own is
usually the degraded input already (hazy, blurry), so haze and blur pass it through; grayscale (recolor) and
holes (inpaint) still apply: the model recolours gray frames (gray footage is unchanged by graying) and a video
carries no hole mask, so the template cuts its own holes. `python -m vidiff_model.remote run --video` rewrites
a template by the same rule.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from ..errors import VIDiffError
from ..video_io import iter_frames
from .samples import clip_fps
from .tasks import check_images, degrade_frames

MINI_SIDE = 128  # vidiff-mini's training frames: 128×128 centre crops
SIDE_MULTIPLE = 32  # its UNet halves the 1/8 latent twice: a side must be a multiple of 8 × 4
PASS_THROUGH, APPLY = "pass through", "apply"
DEGRADATION_MODES = (PASS_THROUGH, APPLY)
STILL_APPLIED = ("recolor", "inpaint")  # tasks whose degradation a clip of your own still gets on PASS_THROUGH


def check_side(value: int, name: str) -> None:
    if value <= 0 or value % SIDE_MULTIPLE:
        raise VIDiffError(f"{name}: {value} is not a positive multiple of {SIDE_MULTIPLE}; vidiff-mini's UNet takes "
                          f"sides that are (it was trained on {MINI_SIDE}×{MINI_SIDE})")


def fit_frame(frame: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """(H, W, 3) uint8 or float frame -> (height, width, 3) float in [0, 1]: the largest centred crop of the target's
    aspect ratio, resized (bilinear, antialiased when shrinking)."""
    h, w = frame.shape[:2]
    if w * height > h * width:  # wider than the target: crop the sides
        crop_w, crop_h = max(1, round(h * width / height)), h
    else:
        crop_w, crop_h = w, max(1, round(w * height / width))
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    x = frame[top:top + crop_h, left:left + crop_w].permute(2, 0, 1)[None].float()  # (1, 3, h, w)
    if frame.dtype == torch.uint8:
        x = x / 255.0
    if (crop_h, crop_w) != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return x[0].permute(1, 2, 0).clamp(0, 1)


def load_footage(path: str | os.PathLike, frames: int = 16, width: int = MINI_SIDE, height: int = MINI_SIDE,
                 name: str = "video") -> tuple[torch.Tensor, float]:
    """Args:
        path: a video file (mp4/webm/mkv/mov/avi, animated webp/gif).
        frames: keep the first `frames` frames (the template's clip length); 0 keeps all.
        width, height: the model's frame size (multiples of 32).
        name: the input named in errors.
    Returns:
        ((F, height, width, 3) float frames in [0, 1], fps). Frames are resized as they are decoded, so a long
        or large video never sits in memory whole.
    """
    if frames < 0:
        raise VIDiffError(f"frames: {frames} is negative; give the template's clip length (16) or 0 for all frames")
    check_side(width, "width")
    check_side(height, "height")
    out = []
    for frame in iter_frames(path, name):  # a VIDiffError names `name`: missing, unsupported, undecodable, empty
        out.append(fit_frame(torch.from_numpy(frame.copy()), width, height))
        if frames and len(out) == frames:
            break
    return torch.stack(out), clip_fps(path)


def degrade_footage(frames: torch.Tensor, task: str, seed: int, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """VIDiff Degrade Video's output for a clip of your own: `degrade_frames`, except that on PASS_THROUGH the
    frames of a task outside STILL_APPLIED come back unchanged (with an empty hole mask)."""
    if mode not in DEGRADATION_MODES:
        raise VIDiffError(f"degradation: {mode!r} is not a choice; choose one of {', '.join(DEGRADATION_MODES)}")
    if mode == APPLY or task in STILL_APPLIED:
        return degrade_frames(frames, task, seed)
    check_images(frames)
    return frames, torch.zeros(frames.shape[:3])
