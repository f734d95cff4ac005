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


# The input of vidiff_mini_long_video_batched: VideoHelperSuite's Load Video lists only ComfyUI's input folder and
# reads container videos (mp4, webm, mkv, mov, gif), not the shipped animated WebP; so the pack writes the sample clip,
# hazed as the dehaze template hazes it, there as an mp4 (nodes/mini_files.py, at start, when it is missing).
HAZY_SAMPLE_VIDEO = "vidiff_mini_sample_hazy.mp4"
HAZE_SEED = 0  # VIDiff Degrade Video's seed in vidiff_mini_dehaze


def write_hazy_sample_video(path: str | os.PathLike, clip: str | os.PathLike | None = None, seed: int = HAZE_SEED,
                            crf: int = 12) -> Path:
    """The shipped sample clip (`clip`: another clip file), hazed by `mini.tasks.degrade_frames(..., "dehaze",
    seed)`, written to `path` as an h264 mp4 at the clip's frame rate (no audio: the clip has none). Written to a
    temporary name first, so a reader never sees half a file."""
    from fractions import Fraction

    import av
    import numpy as np

    from . import SAMPLE_CLIP
    from .tasks import degrade_frames

    clip = Path(clip or SAMPLE_CLIP)
    frames = read_video(clip, "clip")
    hazy, _ = degrade_frames(frames, "dehaze", seed)
    rgb = (hazy.clamp(0, 1) * 255).round().byte().numpy()
    path = Path(path)
    part = path.with_name(f".{path.stem}.part{path.suffix}")
    with av.open(str(part), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(clip_fps(clip)).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = rgb.shape[2], rgb.shape[1], "yuv420p"
        stream.options = {"crf": str(crf)}
        for frame in rgb:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(part, path)
    return path
