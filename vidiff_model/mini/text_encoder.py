"""vidiff-mini's text encoder: a CLIP ViT-L/14 text model with weights drawn from a fixed seed.

No pretrained CLIP can be had offline, so the mini model learns to read a random one. The file has
exactly the layout of ComfyUI's `clip_l.safetensors` (SD-1.5's text encoder): the 196
`text_model.*` tensors plus `text_projection.weight` [768, 768], fp16, so the host's `CLIPLoader`
(type `stable_diffusion`) and `load_text_model` in `training/encoders.py` both read it.

Scales follow transformers' `CLIPPreTrainedModel._init_weights` (initializer_factor 1): token and
position embeddings N(0, 0.02); q/k/v N(0, d^-0.5 (2L)^-0.5); out_proj N(0, d^-0.5); fc1
N(0, (2d)^-0.5); fc2 N(0, d^-0.5 (2L)^-0.5); text_projection N(0, d^-0.5); biases 0; layer norms 1/0.
Values come from one numpy legacy `RandomState(SEED)` stream (its algorithms are frozen), drawn in
sorted key order, rounded to fp16 by numpy, and written by hand in the safetensors format (header
of sorted keys, no metadata other than `format`), so the bytes are identical on every machine and
with any safetensors version.

Command line: `python -m vidiff_model.mini.text_encoder [PATH]` (default: the pack's
`models/text_encoders/vidiff_mini_clip_l.safetensors`).
"""

from __future__ import annotations

import json
import os
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import MINI_TEXT_ENCODER

SEED = 20240613
WIDTH, LAYERS, HEADS, INTERMEDIATE, VOCAB, POSITIONS = 768, 12, 12, 3072, 49408, 77
# ComfyUI's sd1_clip_config.json: eos 49407 (the pooled output's token), pad = end token 49407.
EOS_TOKEN_ID = 49407


def clip_l_layout() -> dict[str, tuple[tuple[int, ...], str, float]]:
    """key -> (shape, init, std) with init one of "normal", "zeros", "ones"; ComfyUI's clip_l keys."""
    d, inner = WIDTH, INTERMEDIATE
    attn_in = d ** -0.5 * (2 * LAYERS) ** -0.5
    spec: dict[str, tuple[tuple[int, ...], str, float]] = {
        "text_model.embeddings.token_embedding.weight": ((VOCAB, d), "normal", 0.02),
        "text_model.embeddings.position_embedding.weight": ((POSITIONS, d), "normal", 0.02),
        "text_model.final_layer_norm.weight": ((d,), "ones", 0.0),
        "text_model.final_layer_norm.bias": ((d,), "zeros", 0.0),
        "text_projection.weight": ((d, d), "normal", d ** -0.5),
    }
    for i in range(LAYERS):
        p = f"text_model.encoder.layers.{i}."
        for proj, std in (("q_proj", attn_in), ("k_proj", attn_in), ("v_proj", attn_in), ("out_proj", d ** -0.5)):
            spec[f"{p}self_attn.{proj}.weight"] = ((d, d), "normal", std)
            spec[f"{p}self_attn.{proj}.bias"] = ((d,), "zeros", 0.0)
        for norm in ("layer_norm1", "layer_norm2"):
            spec[f"{p}{norm}.weight"] = ((d,), "ones", 0.0)
            spec[f"{p}{norm}.bias"] = ((d,), "zeros", 0.0)
        spec[f"{p}mlp.fc1.weight"] = ((inner, d), "normal", (2 * d) ** -0.5)
        spec[f"{p}mlp.fc1.bias"] = ((inner,), "zeros", 0.0)
        spec[f"{p}mlp.fc2.weight"] = ((d, inner), "normal", attn_in)
        spec[f"{p}mlp.fc2.bias"] = ((d,), "zeros", 0.0)
    return spec


def _tensors(seed: int = SEED):
    """(key, fp16 little-endian array) in sorted key order, drawn from one RandomState stream."""
    rng = np.random.RandomState(seed)
    for key, (shape, kind, std) in sorted(clip_l_layout().items()):
        if kind == "normal":
            rows = []
            for start in range(0, shape[0], 4096):  # bounded float64 memory for the 49408-row embedding
                n = min(4096, shape[0] - start)
                rows.append(rng.normal(0.0, std, size=(n,) + shape[1:]).astype("<f2"))
            yield key, np.concatenate(rows)
        else:
            yield key, np.full(shape, 1.0 if kind == "ones" else 0.0, dtype="<f2")


def _header(arrays: list[tuple[str, np.ndarray]]) -> bytes:
    """The safetensors header (as the reference writer emits it: compact JSON, space-padded to 8 bytes)."""
    entries: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for key, a in arrays:
        entries[key] = {"dtype": "F16", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(entries, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text


def generate_clip_l(path: str | os.PathLike, seed: int = SEED) -> Path:
    """Write the seeded CLIP ViT-L/14 text encoder to `path` (≈ 246 MB, fp16).

    Args:
        path: destination file; written as is (use `ensure_clip_l` for an atomic write).
        seed: RandomState seed; the default gives the pinned file.
    Returns:
        the path.
    """
    arrays = list(_tensors(seed))
    path = Path(path)
    with open(path, "wb") as f:
        f.write(_header(arrays))
        for _, a in arrays:
            f.write(a.tobytes())
    return path


def ensure_clip_l(path: str | os.PathLike = MINI_TEXT_ENCODER) -> Path:
    """Generate the text encoder at `path` unless a file is there (temp file + rename, so a reader
    never sees a half-written file and concurrent callers are safe). Returns the path."""
    path = Path(path)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        generate_clip_l(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the host may run as another user
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def main(argv: list[str] | None = None) -> int:
    import hashlib
    import time

    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else MINI_TEXT_ENCODER
    start = time.perf_counter()
    existed = path.is_file()
    ensure_clip_l(path)
    took = time.perf_counter() - start
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"{path}: {'already there' if existed else f'generated in {took:.1f} s'}; sha256 {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
