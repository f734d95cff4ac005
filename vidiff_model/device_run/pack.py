"""The folder carried to a lent GPU machine for `scripts/device_run.sh`: training clips, wheels, tokenizer.

    python -m vidiff_model.device_run.pack [--data data/mini] [--out device_pack] [--quality 75]

(`scripts/device_pack.sh` runs it on the CPU machine.) What the device lacks and cannot fetch (it has no
network, no diffusers, no PyAV) and nothing more, since the working tree and the pack together must stay
under the device's 64 MiB:
- `clips/<name>.webp`: the TRAINING clips only (validation clips never leave this machine), each one lossy
  WebP still image of its frames tiled in rows of `COLUMNS` at the data's size (128²; Pillow reads it);
  quality 75 costs about 33.5 dB PSNR, far above the autoencoder's own ~21 dB round trip. Not an animated
  WebP: its encoder merges frames that differ by less than its lossy tolerance, so frames would go missing;
- `wheels/`: diffusers and the pure-Python packages it and the benchmark import that the device may lack
  (`WHEELS`), at the versions this machine's .venv runs, fetched once into `.cache/device_wheels`;
- `tokenizer/`: the CLIP tokenizer files (ComfyUI's `comfy/sd1_tokenizer`). The 247 MB text encoder does
  not travel: it is generated from its seed on the device (`mini.text_encoder`, seconds);
- `pack.json`: what is in it, with the split it came from.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..mini import PACK_ROOT
from ..mini.data import load_clips

MIB = 2**20
COLUMNS = 8  # frames per row of a packed clip (152 frames: 2,432 px high, far under WebP's 16,383)
MIN_PSNR_DB = 25.0  # a packed clip decoding worse than this is an encoder problem, not a choice
DEVICE_LIMIT_MIB = 64.0  # what one device call may carry: working tree + carried paths
# diffusers and what it imports that torch/transformers/accelerate do not bring (requests and its deps,
# importlib_metadata), and pytest: bench/sampling.py imports tests/conftest.py.
WHEELS = ("diffusers", "importlib_metadata", "zipp", "requests", "urllib3", "idna", "certifi", "charset_normalizer",
          "pytest", "pluggy", "iniconfig", "pygments")
WHEEL_TARGET = ["--python-version", "3.12", "--platform", "manylinux2014_x86_64", "--only-binary=:all:", "--no-deps"]


class PackError(RuntimeError):
    """A pack that cannot be made, or would not fit."""


@dataclass
class PackConfig:
    """Args of `make_pack` (defaults: the shipped recipe's data, the repository's ignored `device_pack/`)."""

    data: Path = PACK_ROOT / "data" / "mini"
    out: Path = PACK_ROOT / "device_pack"
    wheel_cache: Path = PACK_ROOT / ".cache" / "device_wheels"
    tokenizer: Path | None = None  # default: the provisioned ComfyUI's comfy/sd1_tokenizer
    quality: int = 75  # WebP quality of the clips
    clips: int = 0  # only the first N training clips (0: all); for trial runs
    limit_mib: float = DEVICE_LIMIT_MIB
    wheels: tuple[str, ...] = field(default=WHEELS)


def comfy_tokenizer() -> Path:
    comfy = os.environ.get("VIDIFF_COMFYUI") or os.environ.get("COMFYUI_PATH") or PACK_ROOT / ".comfyui" / "ComfyUI"
    return Path(comfy) / "comfy" / "sd1_tokenizer"


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def working_tree_bytes(root: Path = PACK_ROOT) -> int:
    """Bytes of what a device call copies besides the carried paths: tracked files and untracked ones git
    does not ignore."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                             capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise PackError(f"{root}: could not list the working tree with git ({e})") from None
    return sum((root / name).stat().st_size for name in out.decode().split("\0") if name and (root / name).is_file())


def tile(clip: np.ndarray, columns: int = COLUMNS) -> np.ndarray:
    """(F, S, S, 3) frames -> one (ceil(F / columns) · S, columns · S, 3) image, row by row."""
    f, s = clip.shape[:2]
    grid = np.zeros((-(-f // columns) * s, columns * s, 3), np.uint8)
    for i, frame in enumerate(clip):
        grid[(i // columns) * s:(i // columns + 1) * s, (i % columns) * s:(i % columns + 1) * s] = frame
    return grid


def read_packed_clip(path: Path, frames: int, size: int, columns: int = COLUMNS) -> np.ndarray:
    """A packed clip's (frames, size, size, 3) uint8 frames."""
    from PIL import Image

    with Image.open(path) as im:
        grid = np.asarray(im.convert("RGB"))
    rows = -(-frames // columns)
    if grid.shape != (rows * size, columns * size, 3):
        raise PackError(f"{path}: a {grid.shape[1]}x{grid.shape[0]} image, not {frames} frames of {size}² in rows of "
                        f"{columns}")
    return np.stack([grid[(i // columns) * size:(i // columns + 1) * size, (i % columns) * size:(i % columns + 1) * size]
                     for i in range(frames)])


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b) ** 2).mean())
    return 10 * np.log10(255**2 / max(mse, 1e-10))


def write_clips(data: Path, out: Path, quality: int, limit: int = 0) -> tuple[dict[str, int], list[str], float]:
    """Encode the training clips of `data` (written by `mini.data`) into `out`, each checked by decoding it;
    returns ({name: frames}, the validation names left behind, the lowest PSNR of a clip)."""
    from PIL import Image

    split_file = data / "split.json"
    if not split_file.is_file():
        raise PackError(f"{data}: no split.json; make the data first: python -m vidiff_model.mini.data {data}")
    split = json.loads(split_file.read_text())["split"]
    train = load_clips(data / "train")
    missing = [n for n in split["train"] if n not in train]
    if missing:
        raise PackError(f"{data / 'train'}: {len(missing)} training clips of split.json are missing "
                        f"(e.g. {missing[0]}.npy); rerun python -m vidiff_model.mini.data {data}")
    names = sorted(split["train"])[:limit or None]
    out.mkdir(parents=True)
    frames, worst = {}, float("inf")
    for name in names:
        clip = np.asarray(train[name])  # (F, S, S, 3) uint8
        Image.fromarray(tile(clip)).save(out / f"{name}.webp", quality=quality, method=6)
        back = read_packed_clip(out / f"{name}.webp", clip.shape[0], clip.shape[1])
        worst = min(worst, psnr_db(back, clip))
        if worst < MIN_PSNR_DB:
            raise PackError(f"{out / name}.webp decodes at {worst:.1f} dB PSNR, under {MIN_PSNR_DB} dB; raise --quality")
        frames[name] = int(clip.shape[0])
    return frames, sorted(split["val"]), worst


def wheel_pins(names: tuple[str, ...]) -> list[str]:
    """NAME==VERSION as this interpreter has them installed (the versions the tests run)."""
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            raise PackError(f"wheels: {name} is not installed here, so its tested version is unknown; "
                            "run bash scripts/setup_venv.sh") from None
    return pins


def fetch_wheels(pins: list[str], cache: Path, out: Path) -> list[str]:
    """Copy the wheels of `pins` from `cache` to `out`, downloading the missing ones for the device's
    Python 3.12 / manylinux first. Returns the file names."""
    def cached(pin: str) -> Path | None:
        name, version = pin.split("==")
        return next(iter(sorted(cache.glob(f"{name.replace('-', '_')}-{version}-*.whl"))), None)

    cache.mkdir(parents=True, exist_ok=True)
    absent = [p for p in pins if cached(p) is None]
    if absent:
        cmd = [sys.executable, "-m", "pip", "download", "-q", *WHEEL_TARGET, "-d", str(cache), *absent]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise PackError(f"wheels: pip download of {', '.join(absent)} failed:\n{r.stderr[-2000:]}")
    out.mkdir(parents=True)
    names = []
    for pin in pins:
        wheel = cached(pin)
        if wheel is None:
            raise PackError(f"wheels: no wheel for {pin} in {cache} after pip download")
        shutil.copy2(wheel, out / wheel.name)
        names.append(wheel.name)
    return names


def make_pack(cfg: PackConfig) -> dict:
    """Write the pack (replacing an old one) and check it fits; returns its record (also `pack.json`).

    Raises:
        PackError: data, tokenizer or wheels missing, or working tree + pack over `cfg.limit_mib`.
    """
    tokenizer = cfg.tokenizer or comfy_tokenizer()
    if not (tokenizer / "vocab.json").is_file():
        raise PackError(f"tokenizer: {tokenizer} holds no vocab.json; give --tokenizer (a CLIP tokenizer folder) or "
                        "provision ComfyUI (bash scripts/provision_comfyui.sh)")
    if cfg.out.exists():
        shutil.rmtree(cfg.out)
    frames, val, worst_db = write_clips(cfg.data, cfg.out / "clips", cfg.quality, cfg.clips)
    wheels = fetch_wheels(wheel_pins(cfg.wheels), cfg.wheel_cache, cfg.out / "wheels")
    shutil.copytree(tokenizer, cfg.out / "tokenizer")
    size = {part: folder_bytes(cfg.out / part) for part in ("clips", "wheels", "tokenizer")}
    tree = working_tree_bytes()
    record = {"clips": frames, "validation_left_out": val, "quality": cfg.quality, "columns": COLUMNS,
              "lowest_psnr_db": round(worst_db, 2),
              "size": int(np.load(next((cfg.data / "train").glob("*.npy")), mmap_mode="r").shape[1]),
              "wheels": wheels, "bytes": size, "working_tree_bytes": tree, "limit_mib": cfg.limit_mib,
              "config": {k: str(v) for k, v in asdict(cfg).items()}}
    (cfg.out / "pack.json").write_text(json.dumps(record, indent=1))
    total = tree + folder_bytes(cfg.out)
    record["total_mib"] = total / MIB
    (cfg.out / "pack.json").write_text(json.dumps(record, indent=1))
    if total > cfg.limit_mib * MIB:
        raise PackError(f"{cfg.out}: working tree {tree / MIB:.1f} MiB + pack {folder_bytes(cfg.out) / MIB:.1f} MiB = "
                        f"{total / MIB:.1f} MiB, over the device's {cfg.limit_mib:g} MiB; lower --quality "
                        f"(now {cfg.quality}) or pack fewer clips (--clips)")
    return record


def unpack_clips(pack: Path, data: Path) -> dict:
    """On the device: the pack's clips as the `.npy` folder `mini.data` writes (`data/train`, an empty
    `data/val`, `split.json`), decoded once; returns the pack's record.

    Raises:
        PackError: no pack, a packed clip that is a validation clip, or a clip of the wrong length.
    """
    manifest = pack / "pack.json"
    if not manifest.is_file():
        raise PackError(f"{pack}: no pack.json; run bash scripts/device_pack.sh on the CPU machine and carry "
                        f"{pack.name}")
    record = json.loads(manifest.read_text())
    leaked = sorted(set(record["clips"]) & set(record["validation_left_out"]))
    if leaked:
        raise PackError(f"{manifest}: validation clips packed for training ({', '.join(leaked)}); remake the pack")
    (data / "train").mkdir(parents=True, exist_ok=True)
    (data / "val").mkdir(exist_ok=True)
    for name, n in record["clips"].items():
        target = data / "train" / f"{name}.npy"
        if target.exists():
            continue
        clip = read_packed_clip(pack / "clips" / f"{name}.webp", n, int(record["size"]), int(record["columns"]))
        np.save(target.with_suffix(".tmp.npy"), clip)
        target.with_suffix(".tmp.npy").rename(target)
    split = {"train": sorted(record["clips"]), "val": []}
    (data / "split.json").write_text(json.dumps({"split": split, "from": str(pack), "size": record["size"]}, indent=1))
    return record


def main(argv: list[str] | None = None) -> int:
    d = PackConfig()
    p = argparse.ArgumentParser(prog="python -m vidiff_model.device_run.pack", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=d.data, help="folder written by python -m vidiff_model.mini.data")
    p.add_argument("--out", type=Path, default=d.out)
    p.add_argument("--wheel-cache", type=Path, default=d.wheel_cache)
    p.add_argument("--tokenizer", type=Path, default=None, help="CLIP tokenizer folder (default: ComfyUI's)")
    p.add_argument("--quality", type=int, default=d.quality, help="WebP quality of the clips (1-100)")
    p.add_argument("--clips", type=int, default=0, help="first N training clips only (0: all)")
    p.add_argument("--limit-mib", type=float, default=d.limit_mib, help="working tree + pack may not exceed this")
    a = p.parse_args(argv)
    if not 1 <= a.quality <= 100:
        p.error(f"--quality {a.quality}: must be 1-100")
    cfg = PackConfig(data=a.data, out=a.out, wheel_cache=a.wheel_cache, tokenizer=a.tokenizer, quality=a.quality,
                     clips=a.clips, limit_mib=a.limit_mib)
    try:
        record = make_pack(cfg)
    except PackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    b = record["bytes"]
    print(f"{cfg.out}: {len(record['clips'])} training clips ({sum(record['clips'].values())} frames) "
          f"{b['clips'] / MIB:.1f} MiB (lowest PSNR {record['lowest_psnr_db']:.1f} dB), wheels {b['wheels'] / MIB:.1f} MiB, tokenizer {b['tokenizer'] / MIB:.1f} MiB; "
          f"with the working tree ({record['working_tree_bytes'] / MIB:.1f} MiB) {record['total_mib']:.1f} of "
          f"{cfg.limit_mib:g} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
