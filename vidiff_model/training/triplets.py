"""The training stream: sample index -> one training example, a pure function of (seed, index).

Because nothing depends on iteration state, a resumed run sees exactly the samples it would have
seen, and each process of a distributed run takes its own indices (see `sample_indices`).
Per example: a task drawn by weight, a dataset offering it, an item, its frames and phrasing; then
the long-video "first n frames" variant, an image instruction, and condition dropout.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path

from typing import Callable

import torch

from ..config import CLIP_TEXT_TOKENS
from . import synthetic
from .config import DataConfig, SourceConfig
from .errors import DataError, TrainConfigError
from .frames import frame_index
from .sources import (PLAIN_VIDEO_TASKS, EditingPairs, PairedFolders, PlainVideos, ReferringSegmentation, Shape, Source, TextVideos,
                      Triplet)
from .templates import with_first_frames

ATTEMPTS = 50  # draws tried for one index before a run with on_bad_data: skip gives up


def build_source(cfg: SourceConfig, shape: Shape, where: str) -> Source:
    def need(*keys: str) -> None:
        missing = [k for k in keys if not getattr(cfg, k)]
        if missing:
            raise TrainConfigError(f"{where}: a {cfg.type!r} dataset needs {', '.join(missing)}")

    if cfg.type == "videos":
        need("path")
        return PlainVideos(cfg.path, shape, tuple(cfg.tasks) if cfg.tasks else PLAIN_VIDEO_TASKS)
    if cfg.type == "paired":
        need("root", "task", "input", "target")
        return PairedFolders(cfg.root, cfg.task, cfg.input, cfg.target, shape)
    if cfg.type == "segmentation":
        need("root", "images", "masks", "names")
        return ReferringSegmentation(cfg.root, cfg.images, cfg.masks, cfg.names, shape)
    if cfg.type == "editing":
        need("jsonl")
        return EditingPairs(cfg.jsonl, shape)
    if cfg.type == "text_video":
        need("jsonl")
        return TextVideos(cfg.jsonl, shape)
    if cfg.type == "latents":
        need("path")
        from .latent_clips import LatentClips

        return LatentClips(cfg.path, shape, tuple(cfg.tasks) if cfg.tasks else None)
    raise TrainConfigError(f"{where}.type: {cfg.type!r}; choose videos, paired, segmentation, editing, text_video "
                           "or latents")


@dataclass
class Example:
    task: str
    source: torch.Tensor  # (F, H, W, 3); zeros when the video is dropped or the stage is t2v
    target: torch.Tensor  # (F, H, W, 3)
    text: str  # "" when the text is dropped
    image: torch.Tensor  # (H, W, 3); zeros when there is no image instruction
    has_source: bool
    has_image: bool
    index: int
    latent: bool = False  # source/target are raw latents (F, 4, h, w)


def warn(message: str) -> None:
    print(f"[vidiff train] {message}", file=sys.stderr, flush=True)


class TripletStream(torch.utils.data.Dataset):
    """Map-style dataset over sample indices 0, 1, 2, ... (there is no epoch: index -> example)."""

    def __init__(self, data: DataConfig, stage: str, seed: int, token_count: Callable[[str], int] | None = None,
                 index_file: str | Path | None = None):
        """token_count: the text encoder's token count of an instruction (start and end included); an
        instruction over CLIP's 77 is bad data, handled by `on_bad_data` like an unreadable file.
        index_file: a JSON of frame counts (`frames.FrameIndex`) that makes a restart skip the probing."""
        self.data, self.stage, self.seed, self.token_count = data, stage, seed, token_count
        self.shape = Shape(data.frames, data.height, data.width, data.frame_stride)
        with frame_index(index_file):
            self.sources = [build_source(s, self.shape, f"data.sources[{i}]") for i, s in enumerate(data.sources)]
        kinds = {type(s) is TextVideos for s in self.sources}
        if stage == "t2v" and kinds != {True}:
            raise TrainConfigError("data.sources: stage t2v trains on text-video pairs only (type: text_video)")
        if stage == "v2v" and True in kinds:
            raise TrainConfigError("data.sources: text_video datasets belong to stage t2v; stage v2v needs triplets")
        for source in self.sources:
            for problem in source.problems:
                if data.on_bad_data == "stop":
                    raise DataError(problem.path, problem.reason + " (set data.on_bad_data: skip to leave it out)")
                warn(f"skipping {problem}")
        self.bad: set[str] = set()
        self.skipped = sum(len(s.problems) for s in self.sources)
        available = sorted({t for s in self.sources if s.items for t in s.tasks})
        if not available:
            raise TrainConfigError("data.sources: no usable items in any dataset")
        weights = data.task_weights or {t: 1.0 for t in available}
        absent = [t for t, w in weights.items() if w > 0 and t not in available]
        if absent:
            raise TrainConfigError(f"data.task_weights: no dataset offers {', '.join(absent)} "
                                   f"(available: {', '.join(available)})")
        self.tasks = [t for t in available if weights.get(t, 0) > 0]
        if not self.tasks:
            raise TrainConfigError("data.task_weights: every available task has weight 0")
        self.weights = [float(weights[t]) for t in self.tasks]

    def __len__(self) -> int:  # the stream is endless; DataLoader only needs a length for its sampler
        return 2**62

    def _draw(self, rng: random.Random, g: torch.Generator) -> Triplet:
        task = rng.choices(self.tasks, self.weights)[0]
        offering = [s for s in self.sources if task in s.tasks and s.items]
        source = rng.choices(offering, [len(s.items) for s in offering])[0]
        item = source.items[rng.randrange(len(source.items))]
        return source.triplet(item, task, rng, g, self.shape)

    def triplet(self, index: int) -> Triplet:
        """The (source, target, instruction) of sample `index`, before dropout and variants."""
        for attempt in range(ATTEMPTS):
            seed = (self.seed * 1_000_003 + index) * 101 + attempt
            rng, g = random.Random(seed), torch.Generator().manual_seed(seed % 2**63)
            try:
                t = self._draw(rng, g)
                self._check_text(t)
                return t
            except DataError as e:
                if self.data.on_bad_data == "stop":
                    raise DataError(e.path, e.reason + " (set data.on_bad_data: skip to leave it out)") from None
                if e.path not in self.bad:
                    self.bad.add(e.path)
                    warn(f"skipping {e} (sample {index})")
        raise DataError("data.sources", f"{ATTEMPTS} draws for sample {index} all hit bad data")

    def _check_text(self, t: Triplet) -> None:
        if self.token_count is None:
            return
        # the longest form this sample can take: with the long-video prefix (at most 2-digit n)
        n = self.token_count(with_first_frames(t.instruction, 10))
        if n > CLIP_TEXT_TOKENS:
            raise DataError(t.origin, f"its instruction takes {n} CLIP tokens with the long-video prefix, over "
                                      f"{CLIP_TEXT_TOKENS}: {t.instruction[:60]!r}...")

    def __getitem__(self, index: int) -> Example:
        t = self.triplet(index)
        rng = random.Random(f"{self.seed}/{index}/variants")
        g = torch.Generator().manual_seed(rng.getrandbits(63))  # str seeds are stable across processes
        d = self.data
        text, source, target = t.instruction, t.source, t.target
        has_source = source is not None
        # 1. long videos: the first n source frames become the target's, and the instruction says so
        if has_source and d.frames > 1 and rng.random() < d.first_frames:
            n = rng.randint(1, d.frames // 2) if d.frames >= 2 else 1
            source = source.clone()
            source[:n] = target[:n]
            text = with_first_frames(text, n)
        # 2. image instruction: an augmented frame of the target (stage v2v only)
        image = torch.zeros_like(target[0])
        has_image = self.stage == "v2v" and rng.random() < d.image_instruction
        if has_image:
            image = synthetic.augment_image(target[rng.randrange(target.shape[0])], g)
            if rng.random() < d.image_only:
                text = ""
        # 3. condition dropout for the two guidance scales: text (and image), video, or both
        u = rng.random()
        drop_text = u < d.drop_text or d.drop_text + d.drop_video <= u < d.drop_text + d.drop_video + d.drop_both
        drop_video = d.drop_text <= u < d.drop_text + d.drop_video + d.drop_both
        if drop_text:
            text, has_image = "", False
            image = torch.zeros_like(image)
        if drop_video or not has_source:
            source, has_source = torch.zeros_like(target), False
        return Example(t.task, source, target, text, image, has_source, has_image, index, t.latent)


def collate(examples: list[Example]) -> dict:
    assert len({e.latent for e in examples}) == 1, "a batch mixes latent and pixel examples: use one kind of dataset"
    return {
        "latent": examples[0].latent,
        "task": [e.task for e in examples],
        "source": torch.stack([e.source for e in examples]),  # (B, F, H, W, 3), latents (B, F, 4, h, w)
        "target": torch.stack([e.target for e in examples]),  # (B, F, H, W, 3)
        "text": [e.text for e in examples],
        "image": torch.stack([e.image for e in examples]),  # (B, H, W, 3)
        "has_source": torch.tensor([e.has_source for e in examples]),
        "has_image": torch.tensor([e.has_image for e in examples]),
        "index": torch.tensor([e.index for e in examples]),
    }


class StepSampler(torch.utils.data.Sampler):
    """The indices one process reads, from optimizer step `start` on.

    Micro-batch m of step s on rank r holds samples ((s·A + m)·W + r)·B + i, i < B (A accumulation
    steps, W processes, B batch size): every sample is read once, by one process, in a fixed order.
    """

    def __init__(self, start_step: int, batch: int, accumulation: int, rank: int, world: int):
        self.start, self.batch, self.accumulation, self.rank, self.world = start_step, batch, accumulation, rank, world

    def __iter__(self):
        micro = self.start * self.accumulation
        while True:
            base = (micro * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)
            micro += 1

    def __len__(self) -> int:
        return 2**62
