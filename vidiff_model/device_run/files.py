"""The files a device run returns, and joining the UNet's parts back into one checkpoint.

    python -m vidiff_model.device_run.files join device_out runs/gpu/vidiff_mini.safetensors

A device call returns at most 8 files of at most 16 MiB each, and vidiff-mini's fp16 UNet is 32 MiB, so
it travels as parts: each part is itself a safetensors file with a share of the tensors and the whole
file's metadata plus `part` ("2/3") and `parts_of` (the step the file was saved at); `join` checks that the
parts belong together and writes the single file `load_vidiff` reads, byte for byte the tensors and
metadata of the original.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save_file

PART_BYTES = 12 * 2**20  # well under the 16 MiB a returned file may have
UNET_STEM = "vidiff_mini"
VAE_FILE = "vidiff_mini_vae.safetensors"
REPORT_FILE = "device_run.json"
LOG_FILE = "device_run.log"
BENCH_FILE = "bench_sampling.txt"
UNET_LOG_FILE = "unet_log.csv"
MAX_FILES, MAX_FILE_BYTES = 8, 16 * 2**20


def part_files(folder: Path, stem: str = UNET_STEM) -> list[Path]:
    return sorted(folder.glob(f"{stem}.part*of*.safetensors"))


def split_checkpoint(path: Path, folder: Path, tag: str, stem: str = UNET_STEM, part_bytes: int = PART_BYTES) -> list[Path]:
    """Write `path`'s tensors as `stem.partKofN.safetensors` files in `folder`, each under `part_bytes` (but a
    tensor larger than that gets a part of its own). All parts are written under temporary names first and
    renamed at the end, and old parts are removed, so a reader sees one complete set, or parts that `join`
    refuses because their `parts_of` tags differ.

    Args:
        path: a safetensors file.
        folder: where the parts go.
        tag: what identifies this set (e.g. the training step).
    """
    with safe_open(str(path), "pt") as f:
        metadata = dict(f.metadata() or {})
    tensors = load_file(str(path))
    groups: list[list[str]] = [[]]
    used = 0
    for key in sorted(tensors):
        nbytes = tensors[key].numel() * tensors[key].element_size()
        if groups[-1] and used + nbytes > part_bytes:
            groups.append([])
            used = 0
        groups[-1].append(key)
        used += nbytes
    n = len(groups)
    written = []
    for i, keys in enumerate(groups, 1):
        tmp = folder / f".{stem}.part{i}of{n}.tmp"
        save_file({k: tensors[k] for k in keys}, str(tmp), metadata={**metadata, "part": f"{i}/{n}", "parts_of": tag})
        written.append(tmp)
    final = [folder / f"{stem}.part{i}of{n}.safetensors" for i in range(1, n + 1)]
    for old in part_files(folder, stem):
        if old not in final:
            old.unlink()
    for tmp, dest in zip(written, final):
        os.replace(tmp, dest)
    return final


def join_parts(folder: Path, dest: Path, stem: str = UNET_STEM) -> Path:
    """Join `stem.part*of*.safetensors` in `folder` into `dest` (what `split_checkpoint` split).

    Raises:
        ValueError: no parts, a part missing, or parts of different saves, naming the folder.
    """
    parts = part_files(folder, stem)
    if not parts:
        raise ValueError(f"{folder}: no {stem}.partKofN.safetensors files (a device run writes them)")
    tensors, metadata, tags, seen = {}, {}, set(), set()
    for part in parts:
        with safe_open(str(part), "pt") as f:
            meta = dict(f.metadata() or {})
        index, total = meta.pop("part", "?/?").split("/")
        tags.add(meta.pop("parts_of", "?"))
        seen.add(index)
        if total != str(len(parts)):
            raise ValueError(f"{part}: part {index} of {total}, but {folder} holds {len(parts)} parts of {stem}")
        metadata = meta
        tensors.update(load_file(str(part)))
    if len(tags) > 1 or seen != {str(i) for i in range(1, len(parts) + 1)}:
        raise ValueError(f"{folder}: the parts of {stem} come from different saves ({', '.join(sorted(tags))}); "
                         "the run was cut while writing them: use the parts of one save")
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(dest), metadata=metadata)
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vidiff_model.device_run.files", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    j = sub.add_parser("join", help="join a device run's UNet parts into one checkpoint")
    j.add_argument("folder", type=Path, help="the returned files (the device call's $OUT)")
    j.add_argument("dest", type=Path, help="the single checkpoint to write")
    a = p.parse_args(argv)
    try:
        print(join_parts(a.folder, a.dest))
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
