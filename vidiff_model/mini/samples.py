"""The pack's shipped sample clips (`sample_clips/`), read for the sample-clip loader node and the tests,
so the mini workflows run without anything in the host's input folder."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import VIDiffError
from ..video_io import ANIMATED_SUFFIXES, CONTAINER_SUFFIXES, read_video
from . import EXAMPLES_DIR

CLIP_SUFFIXES = ANIMATED_SUFFIXES | CONTAINER_SUFFIXES
DEFAULT_FPS = 8.0  # an animated image without frame durations


def list_sample_clips(folder: str | os.PathLike = EXAMPLES_DIR) -> list[str]:
    """File names of the video clips in `folder` (sorted); [] when it does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in CLIP_SUFFIXES)


def clip_fps(path: str | os.PathLike) -> float:
    """Frames per second: from the frame durations of an animated WebP/GIF, the stream rate of a container."""
    path = Path(path)
    if path.suffix.lower() in ANIMATED_SUFFIXES:
        from PIL import Image, ImageSequence

        with Image.open(path) as im:
            durations = [frame.info.get("duration", 0) for frame in ImageSequence.Iterator(im)]
        mean_ms = sum(durations) / len(durations) if durations else 0
        return round(1000.0 / mean_ms, 3) if mean_ms > 0 else DEFAULT_FPS
    import av

    with av.open(str(path)) as c:
        rate = c.streams.video[0].average_rate
    return float(rate) if rate else DEFAULT_FPS


def load_sample_clip(name: str, frames: int = 0, folder: str | os.PathLike = EXAMPLES_DIR,
                     ) -> tuple[torch.Tensor, float]:
    """Args:
        name: a file name from `list_sample_clips(folder)`.
        frames: keep the first `frames` frames; 0 keeps all.
        folder: where the clips are (the pack's `sample_clips/`).
    Returns:
        ((F, H, W, 3) float frames in [0, 1], fps).
    """
    available = list_sample_clips(folder)
    if name not in available:
        raise VIDiffError(f"clip: {name!r} is not a sample clip in {folder}; choose one of: "
                          f"{', '.join(available) or '(none: the folder holds no clips)'}")
    if frames < 0:
        raise VIDiffError(f"frames: {frames} is negative; give 0 for all frames or a positive limit")
    path = Path(folder) / name
    video = read_video(path, "clip")  # (F, H, W, 3)
    if frames:
        video = video[:frames]
    return video.contiguous(), clip_fps(path)
