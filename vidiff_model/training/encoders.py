"""The frozen parts of training: CLIP text and image encoders and the VAE, from local folders only.

Latents follow the model's convention (`model.py`): the target enters the noise process scaled by the
VAE's factor, the source enters raw. Both use the posterior mean (`latent_dist.mode()`), as
InstructPix2Pix's training does for its input image, so a frame always gives the same latent and a
latent cache can reuse it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ..clip_encoders import CLIPImageInstructionEncoder, CLIPTextInstructionEncoder
from ..errors import VIDiffError
from .config import EncodersConfig
from .errors import TrainConfigError


class FrozenEncoders:
    def __init__(self, cfg: EncodersConfig, device: torch.device, *, need_image: bool):
        from diffusers import AutoencoderKL

        def load(what: str, path: str | None, fn):
            try:
                return fn()
            except (OSError, ValueError) as e:
                raise TrainConfigError(f"encoders.{what}: {path} could not be loaded as a local folder ({e})") from None

        self.device = device
        self.text = load("text_encoder", cfg.text_encoder, lambda: CLIPTextInstructionEncoder.from_pretrained(
            cfg.text_encoder, tokenizer_path=cfg.tokenizer))
        self.text.text_model.to(device)
        self.image = None
        if need_image:
            if not cfg.image_encoder:
                raise TrainConfigError("encoders.image_encoder: image instructions are on (data.image_instruction > 0) "
                                       "and the model has an image MLP; give a local CLIPVisionModelWithProjection "
                                       "folder or set data.image_instruction: 0")
            self.image = load("image_encoder", cfg.image_encoder,
                              lambda: CLIPImageInstructionEncoder.from_pretrained(cfg.image_encoder))
            self.image.vision_model.to(device)
        self.vae = load("vae", cfg.vae, lambda: AutoencoderKL.from_pretrained(cfg.vae, local_files_only=True))
        self.vae.requires_grad_(False).eval().to(device)
        self.scaling_factor = float(self.vae.config.scaling_factor)
        self.cache = Path(cfg.latent_cache) if cfg.latent_cache else None
        if self.cache:
            self.cache.mkdir(parents=True, exist_ok=True)
        self._vae_id = hashlib.sha1(str(Path(cfg.vae).resolve()).encode()).hexdigest()[:8]
        self._null: torch.Tensor | None = None

    @property
    def text_width(self) -> int:
        return int(self.text.text_model.config.hidden_size)

    @property
    def image_width(self) -> int | None:
        return int(self.image.vision_model.config.projection_dim) if self.image else None

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """(B, 77, D) CLIP hidden states; "" is the null instruction."""
        try:
            return self.text.encode(texts)
        except VIDiffError as e:
            raise VIDiffError(f"training data: {e}") from None

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) -> (B, E) CLIP image embeddings."""
        return self.image.encode(images.to(self.device))

    @torch.no_grad()
    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, F, H, W, 3) in [0, 1] -> raw latents (B, 4, F, H/8, W/8)."""
        b, f = frames.shape[:2]
        out = []
        for clip in frames:  # one clip at a time keeps VAE memory at F frames
            key = self._key(clip) if self.cache else None
            cached = self.cache / f"{key}.pt" if key else None
            if cached is not None and cached.exists():
                out.append(torch.load(cached, weights_only=True).to(self.device))
                continue
            x = clip.permute(0, 3, 1, 2).to(self.device, self.vae.dtype) * 2 - 1  # (F, 3, H, W)
            latent = self.vae.encode(x).latent_dist.mode().permute(1, 0, 2, 3).float()  # (4, F, h, w)
            if cached is not None:
                tmp = cached.with_suffix(".tmp")
                torch.save(latent.cpu(), tmp)
                tmp.replace(cached)
            out.append(latent)
        return torch.stack(out)  # (B, 4, F, h, w)

    @torch.no_grad()
    def decode_video(self, latent: torch.Tensor) -> torch.Tensor:
        """Raw latents (B, 4, F, h, w) -> (B, F, H, W, 3) in [0, 1] (validation samples)."""
        frames = []
        for clip in latent:
            x = self.vae.decode(clip.permute(1, 0, 2, 3).to(self.vae.dtype)).sample  # (F, 3, H, W)
            frames.append(((x.float() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).cpu())
        return torch.stack(frames)

    def _key(self, clip: torch.Tensor) -> str:
        """Cache key: the clip's 8-bit pixels (what a video file holds) and the VAE."""
        pixels = (clip.clamp(0, 1) * 255).round().to(torch.uint8).contiguous().numpy()
        h = hashlib.sha1(pixels.tobytes())
        h.update(str(pixels.shape).encode() + self._vae_id.encode())
        return h.hexdigest()
