"""`vidiff_mini_vae`: a TAESD-architecture autoencoder (diffusers `AutoencoderTiny`) trained on the footage.

    python -m vidiff_model.mini.autoencoder --data data/mini --out runs/mini_vae     # seeded, resumable

Exported as one `.safetensors` in the layout the host's VAELoader reads from `models/vae`: `taesd_encoder.*`
(= AutoencoderTiny `encoder.layers.*`), `taesd_decoder.*` (= `decoder.layers.*` shifted by one: the host's
decoder Sequential starts with its tanh clamp) and the scalars `vae_scale`, `vae_shift`. The host encodes
raw = encoder(x01) / vae_scale + vae_shift and decodes decoder((raw − vae_shift) · vae_scale). They are set
from the trained encoder's statistics so that the raw latent × 0.18215 (VIDiff's noisy branch) has zero
mean and unit variance, like SD-1.5's VAE: the latent convention of DESIGN §1.1 stays unchanged.

Training (scripts/train_mini.sh: 4,000 steps of 16 random 32 × 32 crops, lr 5e-4; it is fully convolutional):
flips, L1 + MSE on pixels, L1 on the 8 × 8 block means in opponent colours (`reconstruction_loss`);
the encoder output gets a little Gaussian noise before decoding so the decoder tolerates the small latent
errors a diffusion model makes, and a weak L2 pull keeps latents inside the decoder's tanh(x/3)·3 range.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ..config import SD15_LATENT_SCALING_FACTOR
from .data import load_clips


def new_autoencoder():
    from diffusers import AutoencoderTiny

    return AutoencoderTiny()  # TAESD: 4 latent channels, 64-wide blocks, 1/8 resolution


# -- the host's single-file TAESD layout ------------------------------------------------------------------
def to_taesd_state(ae, vae_scale: float, vae_shift: float) -> dict[str, torch.Tensor]:
    state = {}
    for key, value in ae.state_dict().items():
        part, _, index, rest = key.split(".", 3)  # encoder.layers.N.rest
        n = int(index) + (1 if part == "decoder" else 0)
        state[f"taesd_{part}.{n}.{rest}"] = value.detach().to("cpu", copy=True)
    state["vae_scale"] = torch.tensor(float(vae_scale))
    state["vae_shift"] = torch.tensor(float(vae_shift))
    return state


def from_taesd_state(state: dict[str, torch.Tensor]):
    """(AutoencoderTiny, vae_scale, vae_shift) from a host TAESD single file's tensors."""
    ae = new_autoencoder()
    mapped = {}
    for key, value in state.items():
        if key in ("vae_scale", "vae_shift"):
            continue
        part, index, rest = key.split(".", 2)
        assert part in ("taesd_encoder", "taesd_decoder"), f"unexpected tensor {key} in a TAESD file"
        n = int(index) - (1 if part == "taesd_decoder" else 0)
        mapped[f"{part[6:]}.layers.{n}.{rest}"] = value.float()
    ae.load_state_dict(mapped, strict=True)
    return ae.eval().requires_grad_(False), float(state["vae_scale"]), float(state["vae_shift"])


class MiniVAE:
    """The shipped autoencoder with the host's raw-latent convention (what VAEEncode/VAEDecode compute).

    Args:
        path: a host-layout TAESD file (`export`'s output).
        device: where the encoder runs (`encode` still returns CPU tensors)."""

    def __init__(self, path: str | Path, device: str | torch.device = "cpu"):
        self.ae, self.scale, self.shift = from_taesd_state(load_file(str(path)))
        self.device = torch.device(device)
        self.ae.to(self.device)

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """(F, H, W, 3) in [0, 1] -> raw latent (4, F, H/8, W/8), on the CPU."""
        x = frames.permute(0, 3, 1, 2).float()  # (F, 3, H, W) in [0, 1]
        z = torch.cat([self.ae.encoder.layers(c.to(self.device)).cpu() for c in x.split(16)])  # EncoderTiny takes [0, 1]
        return (z / self.scale + self.shift).permute(1, 0, 2, 3)

    @torch.no_grad()
    def decode(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw latent (4, F, h, w) -> (F, 8h, 8w, 3) in [0, 1]."""
        z = (raw.permute(1, 0, 2, 3).float() - self.shift) * self.scale
        x = torch.cat([self.ae.decoder.layers(torch.tanh(c / 3) * 3) for c in z.split(16)])
        return x.clamp(0, 1).permute(0, 2, 3, 1)


# -- training ----------------------------------------------------------------------------------------------
def _batch(frames: list[np.ndarray], rng: np.random.Generator, batch: int, crop: int) -> torch.Tensor:
    """(B, 3, crop, crop) in [0, 1]: random clip, frame, crop and horizontal flip."""
    out = []
    for _ in range(batch):
        clip = frames[rng.integers(len(frames))]
        f = clip[rng.integers(clip.shape[0])]
        y, x = rng.integers(0, f.shape[0] - crop + 1), rng.integers(0, f.shape[1] - crop + 1)
        patch = np.ascontiguousarray(f[y:y + crop, x:x + crop])
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        out.append(torch.from_numpy(patch.copy()))
    return torch.stack(out).permute(0, 3, 1, 2).float() / 255


def reconstruct(ae, x01: torch.Tensor, noise: float = 0.0, generator: torch.Generator | None = None):
    """Decoder(encoder(x)) in [0, 1] space (AutoencoderTiny's layers without its [-1, 1] wrappers)."""
    z = ae.encoder.layers(x01)
    if noise:
        z = z + noise * torch.randn(z.shape, generator=generator).to(z.device)  # drawn on the CPU: same noise anywhere
    return ae.decoder.layers(torch.tanh(z / 3) * 3), z


def opponent(x: torch.Tensor, chroma_gain: float = 4.0) -> torch.Tensor:
    """(B, 3, H, W) RGB -> luma and two chroma differences (YCoCg's axes), the chroma scaled by `chroma_gain`."""
    r, g, b = x.unbind(1)
    return torch.stack([(r + 2 * g + b) / 4, chroma_gain * (r - b) / 2, chroma_gain * (2 * g - r - b) / 4], 1)


def reconstruction_loss(y: torch.Tensor, x: torch.Tensor, z: torch.Tensor, block_weight: float = 4.0) -> torch.Tensor:
    """L1 + MSE on pixels, `block_weight` × L1 on the 8 × 8 block means, and a weak L2 pull on the latent.

    Why the block term: colour is a small part of a frame's pixel variance, and with the pixel losses alone
    the first autoencoder (v1) spent its steps on luminance detail: its latent held almost no chroma (a
    quadratic fit from the 4 latent channels to each block's chroma explained 3 % of it on training frames,
    5 % on validation ones) and every decoded frame came out sepia. One latent pixel per 8 × 8 block can
    always hold that block's mean colour, and SD's VAE latent does (it is nearly a linear map of the block
    means), so the term asks for it first."""
    block = F.l1_loss(opponent(F.avg_pool2d(y, 8)), opponent(F.avg_pool2d(x, 8))) if block_weight else y.new_zeros(())
    return F.l1_loss(y, x) + F.mse_loss(y, x) + block_weight * block + 1e-4 * (z ** 2).mean()


def _device_of(ae) -> torch.device:
    return next(ae.parameters()).device


def latent_stats(ae, clips: dict[str, np.ndarray], frames_per_clip: int = 8) -> tuple[float, float]:
    """Mean and std of the encoder output over evenly spaced frames of every clip."""
    zs, device = [], _device_of(ae)
    with torch.no_grad():
        for clip in clips.values():
            idx = np.linspace(0, clip.shape[0] - 1, frames_per_clip).round().astype(int)
            x = torch.from_numpy(np.ascontiguousarray(clip[idx])).permute(0, 3, 1, 2).float() / 255
            zs.append(ae.encoder.layers(x.to(device)).flatten().cpu())
    z = torch.cat(zs)
    return float(z.mean()), float(z.std())


def psnr_on(ae, clips: dict[str, np.ndarray], scale: float = 1.0, shift: float = 0.0) -> float:
    """Mean per-frame PSNR (dB) of full-frame reconstructions, every clip's frames."""
    values, device = [], _device_of(ae)
    with torch.no_grad():
        for clip in clips.values():
            x = torch.from_numpy(np.array(clip)).permute(0, 3, 1, 2).float() / 255
            for chunk in x.split(32):
                chunk = chunk.to(device)
                y, _ = reconstruct(ae, chunk)
                y = (y.clamp(0, 1) * 255).round() / 255  # what a saved 8-bit frame holds
                mse = ((y - chunk) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
                values.extend((10 * torch.log10(1 / mse)).tolist())
    return float(np.mean(values))


def train(data: Path, out: Path, *, steps: int = 3000, batch: int = 16, crop: int = 64, lr: float = 1e-3,
          seed: int = 0, latent_noise: float = 0.1, save_every: int = 250, stop_at: int | None = None,
          decoder_of: Path | None = None, block_weight: float = 4.0, device: str | torch.device = "cpu",
          deadline: float | None = None, export_file: bool = True) -> Path:
    """Train (or resume) and export. `stop_at` ends the run early on the `steps`-long learning-rate schedule
    (the result is the same as an uninterrupted run's weights at that step).

    `device`: where the model trains (batches and noise are drawn on the CPU, so the seeded draws are the same
    anywhere). `deadline`: a `time.monotonic()` value; the run stops after the step that passes it, saves its
    state (a later call resumes there) and exports. `export_file=False` only saves the state and returns its
    path (a timing probe).

    `decoder_of`: a file this module exported; its encoder (and vae_scale/vae_shift) stay exactly as they
    are and only the decoder trains on. Latents made with that file stay valid, so the UNet and the decoder
    can be trained in either order."""
    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    clips = load_clips(data / "train")
    frames = list(clips.values())
    fixed = None  # (vae_scale, vae_shift) of a frozen encoder
    if decoder_of is not None:
        ae, *fixed = from_taesd_state(load_file(str(decoder_of)))
        ae.train().decoder.requires_grad_(True)
    else:
        ae = new_autoencoder()
    ae.to(device)
    opt = torch.optim.Adam([p for p in ae.parameters() if p.requires_grad], lr=lr)
    state_file, step = out / "state.pt", 0
    if state_file.exists():  # resume: weights, optimizer, step; the batch of step s depends on (seed, s) only
        state = torch.load(state_file, weights_only=True, map_location="cpu")
        ae.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
        print(f"resumed at step {step}", flush=True)
    log = (out / "log.csv").open("a")
    clock = time.perf_counter()
    end = min(steps, stop_at or steps)
    while step < end:
        rng = np.random.default_rng([seed, step])
        g = torch.Generator().manual_seed(seed * 100_003 + step)
        for group in opt.param_groups:  # cosine decay to 10 %
            group["lr"] = lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        x = _batch(frames, rng, batch, crop).to(device)
        y, z = reconstruct(ae, x, latent_noise, g)
        loss = reconstruction_loss(y, x, z, block_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 25 == 0:
            took = time.perf_counter() - clock
            clock = time.perf_counter()
            log.write(f"{step},{loss.item():.5f},{took / 25:.3f}\n")
            log.flush()
            print(f"step {step}/{steps} loss {loss.item():.4f} {took / 25:.2f} s/step", flush=True)
        if deadline is not None and time.monotonic() >= deadline:
            end = step  # out of time: save below and stop
        if step % save_every == 0 or step in (steps, stop_at, end):
            torch.save({"model": ae.state_dict(), "optimizer": opt.state_dict(), "step": step}, out / "state.tmp")
            (out / "state.tmp").replace(state_file)
    if not export_file:
        return state_file
    return export(ae, data, out / "vidiff_mini_vae.safetensors", fixed)


def export(ae, data: Path, path: Path, scale_shift: tuple[float, float] | None = None) -> Path:
    """Write the host-layout file with vae_scale/vae_shift from the training frames (or `scale_shift`, kept
    from the file whose encoder was frozen), fp16 weights."""
    ae.eval()
    mean, std = latent_stats(ae, load_clips(data / "train"))
    scale = std * SD15_LATENT_SCALING_FACTOR  # raw = (enc − mean) / (std · 0.18215): raw · 0.18215 ~ N(0, 1)
    shift = -mean / scale
    if scale_shift is not None:
        scale, shift = scale_shift
    state = {k: (v.half() if v.ndim else v.float()) for k, v in to_taesd_state(ae, scale, shift).items()}
    val = load_clips(data / "val")  # none where only the training clips travelled (scripts/device_run.sh)
    val_psnr = psnr_on(ae, val) if val else None
    meta = {"format": "taesd", "trained_by": "vidiff_model.mini.autoencoder", "latent_mean": f"{mean:.4f}",
            "latent_std": f"{std:.4f}", **({"val_psnr_db": f"{val_psnr:.2f}"} if val else {})}
    save_file(state, str(path), metadata=meta)
    (path.parent / "vae_report.json").write_text(json.dumps(
        {"val_psnr_db": val_psnr, "latent_mean": mean, "latent_std": std, "vae_scale": scale, "vae_shift": shift},
        indent=1))
    psnr_text = f"validation PSNR {val_psnr:.2f} dB" if val else "no validation clips"
    print(f"wrote {path}: {psnr_text}, latent mean {mean:.3f} std {std:.3f}", flush=True)
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m vidiff_model.mini.autoencoder", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path("data/mini"), help="folder written by vidiff_model.mini.data")
    p.add_argument("--out", type=Path, default=Path("runs/mini_vae"))
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stop-at", type=int, default=None, help="end at this step of the --steps schedule")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--decoder-of", type=Path, default=None,
                   help="an exported vidiff_mini_vae file: keep its encoder and scaling, train only its decoder")
    p.add_argument("--block-weight", type=float, default=4.0,
                   help="weight of the L1 loss on 8x8 block means (colour first; 0: pixel losses only)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    start = time.perf_counter()
    train(a.data, a.out, steps=a.steps, batch=a.batch, crop=a.crop, lr=a.lr, seed=a.seed, stop_at=a.stop_at,
          decoder_of=a.decoder_of, block_weight=a.block_weight)
    print(f"done in {(time.perf_counter() - start) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
