"""Reading training clips: a window of frames from a video file (PyAV) or a frame folder, sized for
training. Only the frames a sample needs are decoded (a container is decoded up to the window's end)."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..video_io import CONTAINER_SUFFIXES, FRAME_SUFFIXES, read_video
from .errors import DataError

VIDEO_SUFFIXES = CONTAINER_SUFFIXES | {".gif", ".webp"}


def frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)


class FrameIndex:
    """Frame counts of videos seen before, kept in a JSON file and keyed by path, size and modification
    time: a restart (or another process of the same run) skips decoding headers of a large dataset."""

    def __init__(self, file: Path):
        self.file, self.changed = file, False
        try:
            self.entries: dict[str, list] = json.loads(file.read_text())
        except (OSError, ValueError):
            self.entries = {}

    def count(self, path: Path) -> int:
        st = path.stat()
        stamp = [st.st_size, st.st_mtime_ns]
        hit = self.entries.get(str(path))
        if hit is not None and hit[:2] == stamp:
            return int(hit[2])
        n = _count_frames(path)
        self.entries[str(path)] = stamp + [n]
        self.changed = True
        return n

    def save(self) -> None:
        if self.changed:
            tmp = self.file.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(self.entries))
            tmp.replace(self.file)
            self.changed = False


_INDEX: FrameIndex | None = None


@contextmanager
def frame_index(file: str | os.PathLike | None):
    """Within the block, `count_frames` uses (and then saves) the index in `file`; None: no index."""
    global _INDEX
    if file is None:
        yield None
        return
    Path(file).parent.mkdir(parents=True, exist_ok=True)
    _INDEX = FrameIndex(Path(file))
    try:
        yield _INDEX
        _INDEX.save()
    finally:
        _INDEX = None


def count_frames(path: str | os.PathLike) -> int:
    """Frames in a video file or frame folder; DataError if it cannot be read."""
    path = Path(path)
    if _INDEX is not None and path.exists():
        return _INDEX.count(path)
    return _count_frames(path)


def _count_frames(path: Path) -> int:
    if not path.exists():
        raise DataError(path, "does not exist")
    if path.is_dir():
        return len(frame_files(path))
    if path.suffix.lower() in CONTAINER_SUFFIXES:
        import av

        try:
            with av.open(str(path)) as c:
                if not c.streams.video:
                    raise DataError(path, "has no video stream")
                n = c.streams.video[0].frames
                if n <= 0:  # some containers do not store a count: decode to count
                    n = sum(1 for _ in c.decode(video=0))
                return n
        except (av.error.FFmpegError, IndexError) as e:
            raise DataError(path, f"could not be decoded ({e})") from None
    return _read_all(path).shape[0]


def _read_all(path: Path) -> torch.Tensor:
    from ..errors import VIDiffError

    try:
        return read_video(path, "video")
    except VIDiffError as e:
        raise DataError(path, str(e).split(": ", 1)[-1]) from None
    except OSError as e:
        raise DataError(path, f"could not be read ({e})") from None


def read_window(path: str | os.PathLike, start: int, count: int, stride: int = 1) -> torch.Tensor:
    """(count, H, W, 3) floats in [0, 1]: frames start, start+stride, ... of a video or frame folder."""
    path = Path(path)
    wanted = [start + i * stride for i in range(count)]
    if path.is_dir():
        files = frame_files(path)
        if wanted[-1] >= len(files):
            raise DataError(path, f"has {len(files)} frames; the sample needs frame {wanted[-1] + 1}")
        from PIL import Image

        try:
            frames = [np.asarray(Image.open(files[i]).convert("RGB")) for i in wanted]
        except OSError as e:
            raise DataError(path, f"a frame could not be read ({e})") from None
    elif path.suffix.lower() in CONTAINER_SUFFIXES:
        import av

        frames, keep = [], set(wanted)
        try:
            with av.open(str(path)) as c:
                for i, frame in enumerate(c.decode(video=0)):
                    if i in keep:
                        frames.append(frame.to_ndarray(format="rgb24"))
                    if i >= wanted[-1]:
                        break
        except (av.error.FFmpegError, IndexError) as e:
            raise DataError(path, f"could not be decoded ({e})") from None
        if len(frames) < count:
            raise DataError(path, f"decoded only {len(frames)} of the {count} frames the sample needs")
    else:
        video = _read_all(path)
        if wanted[-1] >= video.shape[0]:
            raise DataError(path, f"has {video.shape[0]} frames; the sample needs frame {wanted[-1] + 1}")
        return video[wanted]
    sizes = {f.shape for f in frames}
    if len(sizes) != 1:
        raise DataError(path, f"frames of different sizes: {sorted(sizes)}")
    return torch.from_numpy(np.stack(frames)).float() / 255.0


def fit_frames(frames: torch.Tensor, height: int, width: int, mode: str = "bilinear") -> torch.Tensor:
    """Resize so the frames cover height × width (aspect kept), then centre-crop: (F, H, W, C)."""
    f, h, w, c = frames.shape
    scale = max(height / h, width / w)
    nh, nw = max(height, round(h * scale)), max(width, round(w * scale))
    x = frames.permute(0, 3, 1, 2)
    if (nh, nw) != (h, w):
        if mode == "nearest":
            x = F.interpolate(x, size=(nh, nw), mode="nearest")
        else:
            x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    top, left = (nh - height) // 2, (nw - width) // 2
    return x[:, :, top:top + height, left:left + width].permute(0, 2, 3, 1).contiguous()
