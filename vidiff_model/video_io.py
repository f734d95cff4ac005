"""Reading videos for evaluation: mp4/webm/mkv/mov (PyAV), animated webp/gif (Pillow) and folders of
frames (png/jpg/webp, sorted by name). Frames come back as (F, H, W, 3) floats in [0, 1]."""

from __future__ import annotations

import os
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
    elif path.suffix.lower() in ANIMATED_SUFFIXES:
        frames = _animated(path)
    elif path.suffix.lower() in CONTAINER_SUFFIXES:
        frames = _container(path, name)
    else:
        raise VIDiffError(f"{name}: {path.suffix} is not a supported video; use mp4/webm/webp/gif or a frame folder")
    sizes = {f.shape for f in frames}
    if len(sizes) != 1:
        raise VIDiffError(f"{name}: frames of different sizes in {path}: {sorted(sizes)}")
    return torch.from_numpy(np.stack(frames)).float() / 255.0


def _image(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _animated(path: Path) -> list[np.ndarray]:
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        return [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(im)]


def _container(path: Path, name: str) -> list[np.ndarray]:
    import av

    try:
        with av.open(str(path)) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    except (av.error.FFmpegError, IndexError) as e:
        raise VIDiffError(f"{name}: {path} could not be decoded ({e})") from None
    if not frames:
        raise VIDiffError(f"{name}: {path} has no video frames")
    return frames
