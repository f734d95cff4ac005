"""Validation samples during training: a few fixed examples translated with the library's sampler and
saved as animated WebP strips (source | result | target) under `output_dir/samples/`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..guidance import GuidanceConfig
from ..model import VIDiffModel
from ..pipeline import translate_video
from ..sampling import DiffusersSampler
from .config import ValidationConfig
from .encoders import FrozenEncoders
from .triplets import TripletStream

VALIDATION_INDEX = 10**15  # far beyond any training index: these samples are never trained on


def save_strip(path: Path, rows: list[torch.Tensor], fps: int = 8) -> None:
    """Frames (F, H, W, 3) of each row side by side, as a lossless animated WebP."""
    from PIL import Image

    strip = torch.cat(rows, dim=2)  # (F, H, W·n, 3)
    images = [Image.fromarray((f.numpy() * 255).round().astype(np.uint8)) for f in strip]
    tmp = path.with_suffix(".tmp.webp")
    images[0].save(tmp, save_all=True, append_images=images[1:], duration=1000 // fps, loop=0, lossless=True)
    tmp.replace(path)


@torch.no_grad()
def write_samples(model: VIDiffModel, encoders: FrozenEncoders, stream: TripletStream, cfg: ValidationConfig,
                  folder: Path, step: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    null = model.null_instruction(encoders.encode_text([""]))
    written = []
    for k in range(cfg.samples):
        t = stream.triplet(VALIDATION_INDEX + k)
        source = t.source if t.source is not None else torch.zeros_like(t.target)
        latent = encoders.encode_video(source[None])  # (1, 4, F, h, w) raw
        if t.source is None:  # t2v: no video to follow, so s_V = 1 and the null video is the source
            latent = torch.zeros_like(latent)
        instruction = model.encode_instruction(encoders.encode_text([t.instruction]))
        guidance = GuidanceConfig(video_cfg=1.0 if t.source is None else cfg.video_guidance,
                                  text_cfg=cfg.text_guidance)
        result = translate_video(model, latent.to(model.dtype), instruction, null, seed=k,
                                 sampler=DiffusersSampler("euler", "normal", cfg.steps), guidance=guidance)
        frames = encoders.decode_video(result.latent.float())[0]  # (F, H, W, 3)
        path = folder / f"step-{step:07d}-{k}-{t.task}.webp"
        save_strip(path, [source.cpu(), frames, t.target.cpu()])
        (folder / f"step-{step:07d}-{k}-{t.task}.txt").write_text(t.instruction + "\n")
        written.append(path)
    model.train(was_training)
    return written
