"""Precompute the mini model's training latents once: every task's source and target, per 16-frame chunk.

    python -m vidiff_model.mini.latents --data data/mini --vae models/vae/vidiff_mini_vae.safetensors

The autoencoder is frozen during UNet training and TAESD works frame by frame, so each frame's latent is
computed once instead of at every step (on a 2-core CPU the encoder costs more than the mini UNet). For
each training clip, `chunks` evenly spaced 16-frame chunks are cut; each chunk gets its own degradation
draw per task (`tasks.make_pair`, seeded by clip, chunk and task). Written per clip:
`<out>/<clip>.safetensors` with `clean` (the target of every restoration task) and one tensor per task
(restorations: the degraded source; `style:NAME`: the stylised target), each (F, 4, h, w) raw latents in
fp16, F = chunks × 16. Reading them back is `training.sources.LatentClips` (data source type `latents`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from safetensors.torch import save_file

from .autoencoder import MiniVAE
from .data import load_clips
from .tasks import CHUNK, RESTORATION_TASKS, make_pair, mini_tasks


def chunk_starts(frames: int, chunks: int) -> list[int]:
    """Start frames of up to `chunks` evenly spaced, non-overlapping CHUNK-frame chunks."""
    available = frames // CHUNK
    if available == 0:
        return []
    n = min(chunks, available)
    return sorted({round(i * (frames - CHUNK) / max(n - 1, 1)) for i in range(n)}) if n > 1 else [0]


def task_seed(clip: str, start: int, task: str) -> int:
    return int(hashlib.sha1(f"{clip}/{start}/{task}".encode()).hexdigest()[:15], 16)


def clip_frames(name: str, clip: np.ndarray, chunks: int, tasks: tuple[str, ...]) -> dict[str, list[torch.Tensor]]:
    """What gets encoded for one clip: "clean" and one entry per task (restorations: the degraded source,
    styles: the stylised target), each a list over the clip's chunks of (CHUNK, H, W, 3) frames in [0, 1]."""
    frames_of: dict[str, list[torch.Tensor]] = {"clean": [], **{t: [] for t in tasks}}
    for start in chunk_starts(clip.shape[0], chunks):
        frames = torch.from_numpy(np.ascontiguousarray(clip[start:start + CHUNK])).float() / 255  # (16, H, W, 3)
        frames_of["clean"].append(frames)
        for task in tasks:
            source, target, _ = make_pair(task, frames, task_seed(name, start, task))
            frames_of[task].append(source if task in RESTORATION_TASKS else target)
    return frames_of


def _frames_job(job: tuple[str, str, int, tuple[str, ...]]) -> tuple[str, dict[str, list[np.ndarray]]]:
    name, path, chunks, tasks = job
    frames_of = clip_frames(name, np.load(path, mmap_mode="r"), chunks, tasks)
    # numpy through the pool's pipe (about 0.1 GB a clip): torch's shared-memory tensors would hold a file
    # descriptor each while results wait in the queue
    return name, {k: [f.numpy() for f in v] for k, v in frames_of.items()}


def _frames_in_order(jobs: list, workers: int) -> Iterator[tuple[str, dict[str, list[np.ndarray]]]]:
    """(name, frames) per clip, in the order of `jobs`; the degradations (CPU-bound: the style filters take
    most of it) run in `workers` spawned processes when workers > 1."""
    if workers <= 1:
        yield from map(_frames_job, jobs)
        return
    import multiprocessing

    # spawn: the parent may hold a CUDA context; one thread each: the pool supplies the parallelism
    with multiprocessing.get_context("spawn").Pool(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        yield from pool.imap(_frames_job, jobs)


def precompute(data: Path, vae_path: Path, out: Path, chunks: int = 2, tasks: tuple[str, ...] | None = None, *,
               device: str | torch.device = "cpu", workers: int = 0, deadline: float | None = None) -> dict:
    """Write `out/<clip>.safetensors` for every training clip that has none yet, and `out/latents.json`.

    Args:
        data: the folder `vidiff_model.mini.data` wrote (its `train/` part is used).
        vae_path: the autoencoder file (host TAESD layout).
        out: the latent folder.
        chunks: 16-frame chunks per clip.
        tasks: default: every mini task.
        device: where the encoder runs. workers: processes making the degraded frames (0 or 1: this one);
        the files are the same either way.
        deadline: a `time.monotonic()` value; no new clip starts after it (the record says "complete": false,
        and a later call adds the missing clips).
    """
    vae = MiniVAE(vae_path, device)
    out.mkdir(parents=True, exist_ok=True)
    tasks = tasks or mini_tasks()
    todo = [(name, str(data / "train" / f"{name}.npy"), chunks, tasks) for name in load_clips(data / "train")
            if not (out / f"{name}.safetensors").exists()]
    done = 0
    frames_in_order = _frames_in_order(todo, workers)
    try:
        for name, frames_of in frames_in_order:
            done += 1
            if frames_of["clean"]:
                state = {k: torch.cat([vae.encode(torch.from_numpy(f)) for f in v], dim=1).permute(1, 0, 2, 3)
                         .contiguous().half() for k, v in frames_of.items()}  # (F, 4, h, w)
                target_file = out / f"{name}.safetensors"
                save_file(state, str(target_file.with_suffix(".tmp")), metadata={"chunk": str(CHUNK)})
                target_file.with_suffix(".tmp").replace(target_file)
                print(f"{name}: {state['clean'].shape[0]} frames", flush=True)
            if deadline is not None and time.monotonic() >= deadline:
                break
    finally:
        frames_in_order.close()  # ends the worker pool
    record = {"tasks": list(tasks), "chunk": CHUNK, "chunks_per_clip": chunks, "vae": str(vae_path),
              "complete": done == len(todo)}
    (out / "latents.json").write_text(json.dumps(record, indent=1))
    return record


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m vidiff_model.mini.latents", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path("data/mini"))
    p.add_argument("--vae", type=Path, required=True)
    p.add_argument("--out", type=Path, default=None, help="default: DATA/latents")
    p.add_argument("--chunks", type=int, default=2, help="16-frame chunks per clip")
    a = p.parse_args(argv)
    start = time.perf_counter()
    precompute(a.data, a.vae, a.out or a.data / "latents", a.chunks)
    print(f"done in {(time.perf_counter() - start) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
