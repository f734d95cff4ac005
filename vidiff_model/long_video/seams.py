"""A seam measure for videos made clip by clip.

Frame change d_i = mean |frame_{i+1} − frame_i| over all pixels (or latent values). A seam is a
transition where the output switches from one clip's frames to the next clip's (between frames
`new_start − 1` and `new_start` of every clip after the first). The seam ratio is

    mean d over seam transitions / mean d over all other transitions

1.0 means clip boundaries are as smooth as the video inside a clip; 2.0 means twice the change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .planner import Clip


@dataclass(frozen=True)
class SeamReport:
    boundary_change: float  # mean frame change across clip boundaries (nan without boundaries)
    inner_change: float  # mean frame change inside clips
    ratio: float  # boundary / inner (nan without boundaries or when nothing moves)
    boundaries: int


def frame_changes(video: torch.Tensor, frame_axis: int) -> torch.Tensor:
    """(F − 1,) mean absolute change between consecutive frames."""
    v = video.movedim(frame_axis, 0).float()  # (F, ...)
    return (v[1:] - v[:-1]).abs().flatten(1).mean(dim=1)


def seam_report(video: torch.Tensor, clips: list[Clip], frame_axis: int = 2) -> SeamReport:
    """Seam measure of `video` made with `clips`.

    Args:
        video: latents (B, C, F, H, W) with frame_axis=2, or images (F, H, W, 3) with frame_axis=0.
        clips: the plan the video was made with (`plan_clips`).
    """
    d = frame_changes(video, frame_axis)
    seam = torch.zeros_like(d, dtype=torch.bool)
    for clip in clips[1:]:
        if 0 < clip.new_start < video.shape[frame_axis]:
            seam[clip.new_start - 1] = True
    n_seam = int(seam.sum())
    inner = float(d[~seam].mean()) if (~seam).any() else math.nan
    boundary = float(d[seam].mean()) if n_seam else math.nan
    ratio = boundary / inner if n_seam and inner > 0 else math.nan
    return SeamReport(boundary, inner, ratio, n_seam)
