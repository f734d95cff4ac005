"""Safe, lazy reading of weight files: `.safetensors` preferred, `.ckpt`/`.pt`/`.pth`/`.bin` only
through `torch.load(weights_only=True)`.

`TensorFile` exposes names and shapes without reading the tensors (safetensors' header), so a loader
can identify a file and check every key before it reads gigabytes, and reads only what it uses
(an IP2P checkpoint also holds a VAE, a text encoder and EMA copies).

Memory: safetensors' own reader returns tensors backed by a memory map of the file, which is the fastest
way to keep a file's dtype; but every page read stays in the process's resident memory as long as the
map lives. A loader that converts (fp16 file -> fp32 model) says so with `convert_to`: tensors stored in
another floating dtype are then read into buffers of their own, each freed once it is converted.
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from ..errors import CheckpointError

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
# safetensors dtype names -> torch (https://github.com/huggingface/safetensors, format: 8-byte little-endian
# header size, JSON header {name: {dtype, shape, data_offsets}}, then the data)
_ST_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
              "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
              "BOOL": torch.bool}
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


class TensorFile:
    """Names, shapes and (on demand) tensors of one weight file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._convert_to: torch.dtype | None = None
        if not self.path.is_file():
            raise CheckpointError(self.path, "no such file")
        suffix = self.path.suffix.lower()
        self.metadata: dict[str, str] = {}
        self.non_tensors: dict[str, object] = {}  # e.g. `global_step` in an LDM .ckpt
        if suffix in SAFETENSORS_SUFFIXES:
            self._open_safetensors()
        elif suffix in PICKLE_SUFFIXES:
            self._open_pickle()
        else:
            raise CheckpointError(
                self.path, f"unsupported file type '{suffix}': use .safetensors (preferred) or .ckpt/.pt"
            )

    # -- opening ------------------------------------------------------------------------------------
    def _open_safetensors(self) -> None:
        try:
            self._handle = safe_open(str(self.path), framework="pt", device="cpu")
            self.metadata = dict(self._handle.metadata() or {})
            self._shapes = {k: tuple(self._handle.get_slice(k).get_shape()) for k in self._handle.keys()}
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(self.path, f"not a readable safetensors file; it is truncated or corrupt ({e})") from None
        self._tensors: dict[str, torch.Tensor] | None = None
        self._offsets: dict[str, tuple[torch.dtype, int, int]] = {}  # name -> (dtype, start, end) in the file
        with open(self.path, "rb") as f:  # safe_open has read and checked this header already
            size = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(size))
        for k, info in header.items():
            if k != "__metadata__" and info["dtype"] in _ST_DTYPES:
                begin, end = info["data_offsets"]
                self._offsets[k] = (_ST_DTYPES[info["dtype"]], 8 + size + begin, 8 + size + end)

    def _open_pickle(self) -> None:
        obj = self._torch_load()
        if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
            # LDM / Lightning checkpoints: {"state_dict": {...}, "global_step": N, ...}
            self.non_tensors.update({k: v for k, v in obj.items() if k != "state_dict"})
            obj = obj["state_dict"]
        if not isinstance(obj, dict):
            raise CheckpointError(self.path, f"holds a {type(obj).__name__}, not a dictionary of tensors")
        self._tensors = {}
        for k, v in obj.items():
            if isinstance(v, torch.Tensor):
                self._tensors[str(k)] = v
            else:
                self.non_tensors[str(k)] = v
        self._shapes = {k: tuple(v.shape) for k, v in self._tensors.items()}

    def _torch_load(self):
        try:
            try:
                return torch.load(str(self.path), map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as e:
                if "mmap" not in str(e):
                    raise
                # a file in torch's legacy (pre-1.6, non-zip) format cannot be memory-mapped: read it whole
                return torch.load(str(self.path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if "Weights only load failed" in first or "Unsupported global" in str(e):
                raise CheckpointError(
                    self.path,
                    "refused: this pickle holds objects other than tensors, and loading it could run code. "
                    "Only plain tensor checkpoints are read (torch.load weights_only=True); "
                    "convert it to .safetensors with a tool you trust",
                ) from None
            raise CheckpointError(self.path, f"not a readable checkpoint; it is truncated or corrupt ({first})") from None
        except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointError(self.path, f"not a readable checkpoint; it is truncated or corrupt ({first})") from None

    # -- access -------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    def keys(self) -> list[str]:
        return list(self._shapes)

    def shape(self, key: str) -> tuple[int, ...]:
        return self._shapes[key]

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return self._shapes

    def __contains__(self, key: str) -> bool:
        return key in self._shapes

    def get(self, key: str) -> torch.Tensor:
        """One tensor (read from disk now for safetensors)."""
        if self._tensors is not None:
            return self._tensors[key]
        stored = self._offsets[key][0] if key in self._offsets else None
        if stored is not None and stored.is_floating_point and self._convert_to not in (None, stored):
            return self._read(key)  # converted next: a buffer of its own, freed after the conversion
        try:
            return self._handle.get_tensor(key)
        except (SafetensorError, OSError) as e:
            raise CheckpointError(self.path, f"tensor '{key}' could not be read; the file is corrupt ({e})") from None

    def convert_to(self, dtype: torch.dtype | None) -> "TensorFile":
        """Tell the file which dtype the caller converts floating tensors to (None: they are kept as stored).
        Safetensors tensors stored in another floating dtype are then read into buffers of their own, not
        through the memory map, so each one is freed once it is converted."""
        self._convert_to = dtype
        return self

    def _read(self, key: str) -> torch.Tensor:
        """A safetensors tensor read into a buffer of its own (no memory map)."""
        dtype, begin, end = self._offsets[key]
        tensor = torch.empty(self._shapes[key], dtype=dtype)
        buffer = tensor.reshape(-1).view(torch.uint8).numpy()
        with open(self.path, "rb", buffering=0) as f:
            f.seek(begin)
            got = f.readinto(buffer) if end > begin else 0
        if got != end - begin or buffer.nbytes != end - begin:
            raise CheckpointError(self.path, f"tensor '{key}' could not be read; the file is truncated or corrupt")
        return tensor

    def take(self, key: str) -> torch.Tensor:
        """One tensor, read for a single use: a `.ckpt`'s memory-mapped tensor is forgotten here, so the
        mapping is released once the caller has dropped (or converted) every tensor it took."""
        tensor = self.get(key)
        if self._tensors is not None:
            del self._tensors[key]
        return tensor

    def reader(self, key: str) -> "Callable[[], torch.Tensor]":
        """A zero-argument function that takes `key` when called: a lazy entry for `state.materialize`."""
        return functools.partial(self.take, key)


def save_safetensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str]) -> None:
    """Write tensors (made contiguous, on CPU) atomically: a crash never leaves a half-written file."""
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)
