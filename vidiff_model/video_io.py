"""Reading videos for evaluation: mp4/webm/mkv/mov (PyAV), animated webp/gif (Pillow) and folders of
frames (png/jpg/webp, sorted by name). Frames come back as (F, H, W, 3) floats in [0, 1]."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from .errors import VIDiffError

CONTAINER_SUFFIXES = {".mp4", ".webm", ".mkv", ".mov", ".avi"}
ANIMATED_SUFFIXES = {".webp", ".gif"}
FRAME_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def read_video(path: str | os.PathLike, name: str = "video") -> torch.Tensor:
    """(F, H, W, 3) float frames of a video file or a frame folder."""
    path = Path(path)
    if not path.exists():
        raise VIDiffError(f"{name}: {path} does not exist")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
        if not files:
            raise VIDiffError(f"{name}: the folder {path} holds no frames ({', '.join(sorted(FRAME_SUFFIXES))})")
        frames = [_image(p) for p in files]
    else:
        frames = list(iter_frames(path, name))
    sizes = {f.shape for f in frames}
    if len(sizes) != 1:
        raise VIDiffError(f"{name}: frames of different sizes in {path}: {sorted(sizes)}")
    return torch.from_numpy(np.stack(frames)).float() / 255.0


def iter_frames(path: str | os.PathLike, name: str = "video") -> Iterator[np.ndarray]:
    """The (H, W, 3) uint8 frames of a video file, decoded one at a time (stop early: the rest is never read).
    Raises VIDiffError naming `name` for a missing, unsupported or undecodable file, or one without frames."""
    path = Path(path)
    if not path.is_file():
        raise VIDiffError(f"{name}: {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in ANIMATED_SUFFIXES | CONTAINER_SUFFIXES:
        raise VIDiffError(f"{name}: {path.suffix} is not a supported video; use mp4/webm/webp/gif or a frame folder")
    count = 0
    if suffix in ANIMATED_SUFFIXES:
        from PIL import Image, ImageSequence

        try:
            with Image.open(path) as im:
                for frame in ImageSequence.Iterator(im):
                    count += 1
                    yield np.asarray(frame.convert("RGB"))
        except OSError as e:  # PIL's UnidentifiedImageError, a truncated file
            raise VIDiffError(f"{name}: {path} could not be decoded ({e})") from None
    else:
        import av

        try:
            with av.open(str(path)) as c:
                if not c.streams.video:
                    raise VIDiffError(f"{name}: {path} has no video stream (audio only?); give a video file")
                for frame in c.decode(video=0):
                    count += 1
                    yield frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as e:
            raise VIDiffError(f"{name}: {path} could not be decoded ({e})") from None
    if not count:
        raise VIDiffError(f"{name}: {path} has no video frames; give a video with at least one")


def _image(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))
