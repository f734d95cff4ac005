"""Does a vidiff-mini autoencoder keep colour? Round trip PSNR and chroma on the validation clips (issue 13).

    .venv/bin/python bench/mini_autoencoder.py models/vae/vidiff_mini_vae.safetensors [OTHER.safetensors ...]
        [--val data/mini/val] [--every 12] [--frames 4]

For every file (the host's TAESD layout, `mini.autoencoder.export`), on `--frames` frames taken every
`--every` frames of each validation clip:
- round trip PSNR (dB) of the decoded frames against the originals;
- latent chroma R²: how much of each 8 × 8 block's chroma (RGB minus its mean) a quadratic fit from the
  block's 4 latent channels explains (0: the latent holds no colour; 1: all of it);
- decoded chroma R²: the same for the decoded frames' block means against the originals', and the chroma
  standard deviation of both (a sepia decoder shows a small one).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def r_squared(pred: torch.Tensor, ref: torch.Tensor) -> float:
    """1 − SSE / SST over all rows of (N, C) tensors (the total around each column's mean)."""
    return float(1 - ((pred - ref) ** 2).sum() / ((ref - ref.mean(0)) ** 2).sum())


def chroma(rgb: torch.Tensor) -> torch.Tensor:
    return rgb - rgb.mean(-1, keepdim=True)


def as_rows(t: torch.Tensor) -> torch.Tensor:
    """(F, C, h, w) -> (F·h·w, C) float64: one row per latent pixel or 8 × 8 block."""
    return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1]).double()


def quadratic_features(z: torch.Tensor) -> torch.Tensor:
    """(N, 4) -> (N, 15): 1, z and every product z_i z_j (i <= j)."""
    pairs = [z[:, i:i + 1] * z[:, j:j + 1] for i in range(z.shape[1]) for j in range(i, z.shape[1])]
    return torch.cat([torch.ones_like(z[:, :1]), z, *pairs], 1)


def measure(path: Path, clips: dict[str, np.ndarray], every: int, frames: int) -> dict[str, float]:
    from safetensors.torch import load_file

    from vidiff_model.mini.autoencoder import from_taesd_state, reconstruct

    ae = from_taesd_state(load_file(str(path)))[0]
    psnr, latents, blocks, decoded_blocks = [], [], [], []
    with torch.no_grad():
        for clip in clips.values():
            x = torch.from_numpy(np.array(clip[::every][:frames])).float().permute(0, 3, 1, 2) / 255  # (F, 3, H, W)
            y, z = reconstruct(ae, x)
            y = y.clamp(0, 1)
            psnr.append(float(-10 * torch.log10(F.mse_loss(y, x))))
            latents.append(as_rows(z))
            blocks.append(as_rows(F.avg_pool2d(x, 8)))
            decoded_blocks.append(as_rows(F.avg_pool2d(y, 8)))
    z, ref, dec = torch.cat(latents), torch.cat(blocks), torch.cat(decoded_blocks)
    phi = quadratic_features(z)
    fit = phi @ torch.linalg.lstsq(phi, ref).solution
    return {"psnr": float(np.mean(psnr)), "latent_chroma_r2": r_squared(chroma(fit), chroma(ref)),
            "decoded_chroma_r2": r_squared(chroma(dec), chroma(ref)),
            "chroma_std": float(chroma(ref).std()), "decoded_chroma_std": float(chroma(dec).std())}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("files", type=Path, nargs="+", help="vidiff_mini_vae files (host TAESD layout)")
    p.add_argument("--val", type=Path, default=ROOT / "data" / "mini" / "val")
    p.add_argument("--every", type=int, default=12)
    p.add_argument("--frames", type=int, default=4)
    a = p.parse_args(argv)
    from vidiff_model.mini.data import load_clips

    clips = load_clips(a.val)
    if not clips:
        raise SystemExit(f"--val: no clips in {a.val}; write them with python -m vidiff_model.mini.data data/mini")
    print(f"{len(clips)} validation clips, {a.frames} frames each (every {a.every}th)")
    print("| file | round trip PSNR (dB) | latent chroma R² | decoded chroma R² | chroma std decoded / original |")
    print("|---|---|---|---|---|")
    for path in a.files:
        m = measure(path, clips, a.every, a.frames)
        print(f"| {path} | {m['psnr']:.2f} | {m['latent_chroma_r2']:.3f} | {m['decoded_chroma_r2']:.3f} | "
              f"{m['decoded_chroma_std']:.3f} / {m['chroma_std']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
