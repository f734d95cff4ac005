"""Where triplets ⟨source, target, instruction⟩ come from, one class per dataset layout.

Each source lists its items once, at start-up (probing every file, so bad data shows up before the
first step), and turns an item into a `Triplet` on demand. Which item, which frames, which phrasing
and which degradation are drawn from the generators it is given, so a sample is a pure function of
its seed.

| type         | layout                                                    | tasks                              |
|--------------|-----------------------------------------------------------|------------------------------------|
| videos       | a folder of videos or frame folders                       | recolor, inpaint, dehaze*, deblur* |
| paired       | input and ground-truth folders per clip (HazeWorld, BSD)  | dehaze or deblur                   |
| segmentation | frames + per-frame object masks (DAVIS, Refer-YouTube-VOS) | segmentation                       |
| editing      | JSONL of {"source", "target", "instruction"}              | editing                            |
| text_video   | JSONL of {"video", "caption"} (stage 2)                   | t2v                                |
(* synthetic haze and motion blur)
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..video_ops import COLORS
from . import synthetic
from .errors import DataError
from .frames import VIDEO_SUFFIXES, count_frames, fit_frames, frame_files, read_window
from .templates import instruction_for

TASKS = ("recolor", "inpaint", "dehaze", "deblur", "segmentation", "editing", "t2v")
STYLE_TASK_PREFIX = "style:"  # style:NAME, text style edits with a classical target (precomputed latents)
PLAIN_VIDEO_TASKS = ("recolor", "inpaint", "dehaze", "deblur")
SEGMENTATION_COLORS = ("red", "green", "blue", "yellow")


@dataclass
class Triplet:
    task: str
    source: torch.Tensor | None  # (F, H, W, 3) in [0, 1]; None for text-to-video
    target: torch.Tensor  # (F, H, W, 3)
    instruction: str
    origin: str  # the file(s) it came from, for error messages
    latent: bool = False  # source/target are raw VAE latents (F, 4, h, w), not frames (precomputed)


@dataclass(frozen=True)
class Shape:
    frames: int
    height: int
    width: int
    stride: int = 1

    @property
    def span(self) -> int:
        """Frames of the original video a sample covers."""
        return (self.frames - 1) * self.stride + 1


class Source:
    """A dataset: `items` (found at start-up) and `triplet(item, task, ...)`."""

    tasks: tuple[str, ...] = ()
    name: str = ""

    def __init__(self) -> None:
        self.items: list = []
        self.problems: list[DataError] = []  # items left out at start-up, with why

    def triplet(self, item, task: str, rng: random.Random, g: torch.Generator, shape: Shape) -> Triplet:
        raise NotImplementedError

    def _probe(self, path: Path, shape: Shape) -> int:
        n = count_frames(path)
        if n < shape.span:
            raise DataError(path, f"has {n} frames; a training sample needs {shape.span} "
                                  f"({shape.frames} frames, stride {shape.stride})")
        return n

    @staticmethod
    def _start(n: int, shape: Shape, rng: random.Random) -> int:
        return rng.randrange(0, n - shape.span + 1)


def _videos_in(folder: Path) -> list[Path]:
    """Video files and frame folders directly inside `folder`, sorted."""
    if not folder.is_dir():
        raise DataError(folder, "is not a folder")
    found = [p for p in sorted(folder.iterdir())
             if (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES) or (p.is_dir() and frame_files(p))]
    if not found:
        raise DataError(folder, "holds no videos (mp4/webm/mkv/mov/avi/gif/webp) or frame folders")
    return found


class PlainVideos(Source):
    """Any videos: recolor (grayscale source), inpaint (free-form holes), synthetic haze and blur."""

    name = "videos"

    def __init__(self, path: str | Path, shape: Shape, tasks: tuple[str, ...] = PLAIN_VIDEO_TASKS):
        super().__init__()
        bad = [t for t in tasks if t not in PLAIN_VIDEO_TASKS]
        if bad:
            raise DataError(path, f"plain videos can train {', '.join(PLAIN_VIDEO_TASKS)}, not {', '.join(bad)}")
        self.tasks = tuple(tasks)
        for p in _videos_in(Path(path)):
            try:
                self.items.append((p, self._probe(p, shape)))
            except DataError as e:
                self.problems.append(e)

    def triplet(self, item, task, rng, g, shape):
        path, n = item
        target = fit_frames(read_window(path, self._start(n, shape, rng), shape.frames, shape.stride),
                            shape.height, shape.width)
        if task == "recolor":
            source = synthetic.grayscale(target)
        elif task == "inpaint":
            source, _ = synthetic.inpaint_source(target, g)
        elif task == "dehaze":
            source = synthetic.add_haze(target, g)
        else:
            source = synthetic.add_motion_blur(target, g)
        return Triplet(task, source, target, instruction_for(task, rng), str(path))


class PairedFolders(Source):
    """Degraded and ground-truth frames per clip. `input`/`target` are paths under `root` with a
    `{clip}` placeholder: HazeWorld-like `hazy/{clip}` + `gt/{clip}`, BSD-like `{clip}/Blur/RGB` +
    `{clip}/Sharp/RGB`. Clips are the names found where `{clip}` stands in the input pattern."""

    name = "paired"

    def __init__(self, root: str | Path, task: str, input: str, target: str, shape: Shape):
        super().__init__()
        if task not in ("dehaze", "deblur"):
            raise DataError(root, f"paired folders train dehaze or deblur, not {task!r}")
        if "{clip}" not in input or "{clip}" not in target:
            raise DataError(root, "paired folders need '{clip}' in both the input and the target pattern")
        self.tasks = (task,)
        root = Path(root)
        head, _, _ = input.partition("{clip}")
        parent = root / head
        if not parent.is_dir():
            raise DataError(parent, "is not a folder (the part of the input pattern before {clip})")
        clips = sorted(p.name for p in parent.iterdir() if p.is_dir())
        if not clips:
            raise DataError(parent, "holds no clip folders")
        for clip in clips:
            src, tgt = root / input.format(clip=clip), root / target.format(clip=clip)
            try:
                if not tgt.exists():
                    raise DataError(tgt, f"is missing: clip {clip!r} has input frames but no ground truth")
                n_src, n_tgt = self._probe(src, shape), self._probe(tgt, shape)
                if n_src != n_tgt:
                    raise DataError(tgt, f"has {n_tgt} frames but its input {src} has {n_src}")
                self.items.append((src, tgt, n_src))
            except DataError as e:
                self.problems.append(e)

    def triplet(self, item, task, rng, g, shape):
        src, tgt, n = item
        start = self._start(n, shape, rng)
        read = lambda p: fit_frames(read_window(p, start, shape.frames, shape.stride), shape.height, shape.width)
        return Triplet(task, read(src), read(tgt), instruction_for(task, rng), str(src))


def _object_ids(path: Path) -> np.ndarray:
    """(H, W) object ids of an annotation PNG: palette indices (DAVIS 2017, Refer-YouTube-VOS) or, for a
    grayscale/binary mask (DAVIS 2016), 1 where it is set."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode == "P":
            return np.asarray(im).astype(np.int64)
        return (np.asarray(im.convert("L")) > 127).astype(np.int64)


class ReferringSegmentation(Source):
    """Frames + per-frame object-id masks + a name for each object.

    Names come from a Refer-YouTube-VOS `meta_expressions.json` ({"videos": {clip: {"expressions": {k:
    {"exp": text, "obj_id": id}}}}}) or a JSON of {clip: {obj_id: name}} (DAVIS has no names of its own).
    The target paints the object semi-transparently in a colour, which VIDiffMaskFromSegmentation reads back.
    """

    name = "segmentation"
    tasks = ("segmentation",)

    def __init__(self, root: str | Path, images: str, masks: str, names: str, shape: Shape):
        super().__init__()
        root = Path(root)
        names_path = root / names
        try:
            raw = json.loads(names_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise DataError(names_path, f"could not read the object names ({e})") from None
        pairs: dict[str, list[tuple[str, str]]] = {}
        if "videos" in raw:  # Refer-YouTube-VOS
            for clip, entry in raw["videos"].items():
                for exp in entry.get("expressions", {}).values():
                    pairs.setdefault(clip, []).append((str(exp["obj_id"]), str(exp["exp"])))
        else:
            for clip, objects in raw.items():
                pairs[clip] = [(str(k), str(v)) for k, v in objects.items()]
        if not pairs:
            raise DataError(names_path, "names no objects")
        for clip, objects in sorted(pairs.items()):
            frames_dir, masks_dir = root / images.format(clip=clip), root / masks.format(clip=clip)
            try:
                n = self._probe(frames_dir, shape)
                if not masks_dir.is_dir():
                    raise DataError(masks_dir, f"is missing: clip {clip!r} has frames but no masks")
                n_masks = len([p for p in masks_dir.iterdir() if p.suffix.lower() == ".png"])
                if n_masks < n:
                    raise DataError(masks_dir, f"has {n_masks} masks for {n} frames in {frames_dir}; "
                                               "every frame needs its mask")
                for obj_id, text in objects:
                    self.items.append((frames_dir, masks_dir, n, int(obj_id), text))
            except DataError as e:
                self.problems.append(e)

    def triplet(self, item, task, rng, g, shape):
        frames_dir, masks_dir, n, obj_id, text = item
        start = self._start(n, shape, rng)
        frames = fit_frames(read_window(frames_dir, start, shape.frames, shape.stride), shape.height, shape.width)
        mask_files = sorted(p for p in masks_dir.iterdir() if p.suffix.lower() == ".png")
        picked = [mask_files[start + i * shape.stride] for i in range(shape.frames)]
        masks = torch.from_numpy(np.stack([_object_ids(p) == obj_id for p in picked])).float()  # (F, h, w)
        masks = fit_frames(masks[..., None], shape.height, shape.width, mode="nearest")[..., 0]
        color = rng.choice(SEGMENTATION_COLORS)
        text = re.sub(r"^(the|a|an)\s+", "", text.strip(), flags=re.IGNORECASE)  # the templates say "the {object}"
        target = synthetic.paint_object(frames, masks, COLORS[color])
        instruction = instruction_for("segmentation", rng, object=text, color=color.capitalize())
        return Triplet(task, frames, target, instruction, str(frames_dir))


def _read_jsonl(path: Path, fields: tuple[str, ...]) -> list[tuple[int, dict]]:
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise DataError(path, f"could not be read ({e})") from None
    rows = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(path, f"line {i} is not JSON ({e})") from None
        missing = [f for f in fields if not isinstance(row.get(f), str)]
        if missing:
            raise DataError(path, f"line {i} lacks {', '.join(repr(m) for m in missing)} (needs {', '.join(fields)})")
        rows.append((i, row))
    if not rows:
        raise DataError(path, "holds no rows")
    return rows


class EditingPairs(Source):
    """Generated editing pairs: one JSON per line, {"source", "target", "instruction"}; paths relative
    to the file."""

    name = "editing"
    tasks = ("editing",)

    def __init__(self, jsonl: str | Path, shape: Shape):
        super().__init__()
        jsonl = Path(jsonl)
        for _, row in _read_jsonl(jsonl, ("source", "target", "instruction")):
            src, tgt = jsonl.parent / row["source"], jsonl.parent / row["target"]
            try:
                n_src, n_tgt = self._probe(src, shape), self._probe(tgt, shape)
                self.items.append((src, tgt, min(n_src, n_tgt), row["instruction"]))
            except DataError as e:
                self.problems.append(e)

    def triplet(self, item, task, rng, g, shape):
        src, tgt, n, text = item
        start = self._start(n, shape, rng)
        read = lambda p: fit_frames(read_window(p, start, shape.frames, shape.stride), shape.height, shape.width)
        return Triplet(task, read(src), read(tgt), text, str(src))


class TextVideos(Source):
    """Stage 2 (T2V): one JSON per line, {"video", "caption"}; the model sees no source video."""

    name = "text_video"
    tasks = ("t2v",)

    def __init__(self, jsonl: str | Path, shape: Shape):
        super().__init__()
        jsonl = Path(jsonl)
        for _, row in _read_jsonl(jsonl, ("video", "caption")):
            path = jsonl.parent / row["video"]
            try:
                self.items.append((path, self._probe(path, shape), row["caption"]))
            except DataError as e:
                self.problems.append(e)

    def triplet(self, item, task, rng, g, shape):
        path, n, caption = item
        target = fit_frames(read_window(path, self._start(n, shape, rng), shape.frames, shape.stride),
                            shape.height, shape.width)
        return Triplet(task, None, target, caption, str(path))
