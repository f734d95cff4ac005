"""Data source type `latents`: precomputed VAE latents (`python -m vidiff_model.mini.latents`).

A folder of `<clip>.safetensors`, each with `clean` (F, 4, h, w) raw latents and one tensor of the same
shape per task: for a restoration task the degraded source (its target is `clean`), for `style:NAME` the
stylised target (its source is `clean`). F is a multiple of the chunk length (`chunk` in the file's
metadata); a training window lies inside one chunk, so it never joins two degradation draws. Triplets
carry latents instead of frames (`Triplet.latent`): the trainer skips the VAE for them, and the
"first n frames" variant and condition dropout act on latent frames exactly as on pixel frames (TAESD
encodes frame by frame, and the null video is the zero latent).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open

from .errors import DataError
from .sources import Source, Triplet
from .templates import instructions


class LatentClips(Source):
    name = "latents"

    def __init__(self, path: str | Path, shape, tasks: tuple[str, ...] | None = None):
        super().__init__()
        folder = Path(path)
        files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
        if not files:
            raise DataError(folder, "holds no precomputed latents (<clip>.safetensors from vidiff_model.mini.latents)")
        found: set[str] | None = None
        for f in files:
            try:
                with safe_open(str(f), "pt") as sf:
                    keys = set(sf.keys())
                    chunk = int(sf.metadata().get("chunk", "16"))
                    frames = sf.get_slice("clean").get_shape()[0]
            except Exception as e:  # noqa: BLE001 - any unreadable file is bad data, named
                self.problems.append(DataError(f, f"could not be read as precomputed latents ({e})"))
                continue
            if "clean" not in keys or chunk < shape.span or frames % chunk:
                self.problems.append(DataError(f, f"needs a 'clean' tensor in whole chunks of at least {shape.span} "
                                                  f"frames (chunk {chunk}, {frames} frames)"))
                continue
            found = keys if found is None else found & keys
            self.items.append((f, frames, chunk))
        self.tasks = tuple(sorted((found or set()) - {"clean"}))
        if tasks:
            missing = [t for t in tasks if t not in self.tasks]
            if missing:
                raise DataError(folder, f"has no latents for {', '.join(missing)} (it has {', '.join(self.tasks)})")
            self.tasks = tuple(tasks)

    def triplet(self, item, task, rng, g, shape):
        path, frames, chunk = item
        start = rng.randrange(frames // chunk) * chunk + rng.randrange(chunk - shape.span + 1)
        rows = slice(start, start + shape.span, shape.stride)
        with safe_open(str(path), "pt") as sf:
            clean = sf.get_slice("clean")[rows].float()  # (F, 4, h, w)
            other = sf.get_slice(task)[rows].float()
        source, target = (clean, other) if task.startswith("style:") else (other, clean)
        return Triplet(task, source, target, rng.choice(instructions(task)), str(path), latent=True)
