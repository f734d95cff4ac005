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


def precompute(data: Path, vae_path: Path, out: Path, chunks: int = 2, tasks: tuple[str, ...] | None = None) -> dict:
    vae = MiniVAE(vae_path)
    out.mkdir(parents=True, exist_ok=True)
    tasks = tasks or mini_tasks()
    done = 0
    for name, clip in load_clips(data / "train").items():
        target_file = out / f"{name}.safetensors"
        if target_file.exists():
            continue
        tensors: dict[str, list[torch.Tensor]] = {"clean": [], **{t: [] for t in tasks}}
        for start in chunk_starts(clip.shape[0], chunks):
            frames = torch.from_numpy(np.ascontiguousarray(clip[start:start + CHUNK])).float() / 255  # (16, H, W, 3)
            tensors["clean"].append(vae.encode(frames))
            for task in tasks:
                source, target, _ = make_pair(task, frames, task_seed(name, start, task))
                tensors[task].append(vae.encode(source if task in RESTORATION_TASKS else target))
        if not tensors["clean"]:
            continue
        state = {k: torch.cat(v, dim=1).permute(1, 0, 2, 3).contiguous().half() for k, v in tensors.items()}  # (F, 4, h, w)
        save_file(state, str(target_file.with_suffix(".tmp")), metadata={"chunk": str(CHUNK)})
        target_file.with_suffix(".tmp").replace(target_file)
        done += 1
        print(f"{name}: {state['clean'].shape[0]} frames", flush=True)
    record = {"tasks": list(tasks), "chunk": CHUNK, "chunks_per_clip": chunks, "vae": str(vae_path)}
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
