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

from ..checkpoints.io import TensorFile
from ..clip_encoders import CLIPImageInstructionEncoder, CLIPTextInstructionEncoder
from ..errors import VIDiffError
from .config import EncodersConfig
from .errors import TrainConfigError

# SD-1.5's VAE and CLIP ViT-L/14 text encoder, for weights given as single files (ComfyUI's models/vae
# and models/text_encoders files, or the parts inside an SD-1.5 / InstructPix2Pix checkpoint).
SD15_VAE = dict(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4, sample_size=512,
                scaling_factor=0.18215)
CLIP_L_TEXT = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                   num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768)
VAE_PREFIXES = ("first_stage_model.", "vae.", "")
TEXT_MARKER = "text_model."


def load_vae(path: str):
    """A diffusers AutoencoderKL folder, or an SD VAE single file (bare, or inside an SD/IP2P checkpoint)."""
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    if Path(path).is_dir():
        return AutoencoderKL.from_pretrained(path, local_files_only=True)
    tf = TensorFile(path)
    prefix = next((p for p in VAE_PREFIXES if f"{p}encoder.conv_in.weight" in tf), None)
    if prefix is None:
        raise TrainConfigError(f"encoders.vae: {path} holds no SD VAE (no encoder.conv_in.weight, with or without "
                               "first_stage_model.); give an SD-1.5 VAE file or an AutoencoderKL folder")
    state = {k: tf.get(k).float() for k in tf.keys() if k.startswith(prefix)}
    vae = AutoencoderKL(**SD15_VAE)
    converted = convert_ldm_vae_checkpoint(state, vae.config)
    missing, _ = vae.load_state_dict(converted, strict=False)
    if missing:
        raise TrainConfigError(f"encoders.vae: {path} is not an SD-1.5 VAE: {len(missing)} tensors missing "
                               f"(e.g. {', '.join(missing[:3])})")
    return vae


def load_text_model(path: str, tokenizer: str | None) -> CLIPTextInstructionEncoder:
    """A transformers CLIPTextModel folder, or a CLIP-L text encoder single file (ComfyUI's clip_l, or the
    cond_stage_model inside an SD-1.5 checkpoint) with a tokenizer folder."""
    if Path(path).is_dir():
        return CLIPTextInstructionEncoder.from_pretrained(path, tokenizer_path=tokenizer)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    if not tokenizer:
        raise TrainConfigError("encoders.tokenizer: a single-file text encoder needs a CLIP tokenizer folder, "
                               "e.g. ComfyUI's comfy/sd1_tokenizer or an SD-1.5 repo's tokenizer")
    tf = TensorFile(path)
    state = {k.split(TEXT_MARKER, 1)[1]: tf.get(k).float() for k in tf.keys() if TEXT_MARKER in k}
    if not state:
        raise TrainConfigError(f"encoders.text_encoder: {path} holds no CLIP text model (no '{TEXT_MARKER}*' keys)")
    model = CLIPTextModel(CLIPTextConfig(**CLIP_L_TEXT))
    mine = model.state_dict()
    prefix = "" if any(k in mine for k in state) else TEXT_MARKER
    missing, _ = model.load_state_dict({prefix + k: v for k, v in state.items()}, strict=False)
    missing = [k for k in missing if "position_ids" not in k]
    if missing:
        raise TrainConfigError(f"encoders.text_encoder: {path} is not a CLIP ViT-L/14 text encoder: "
                               f"{len(missing)} tensors missing (e.g. {', '.join(missing[:3])})")
    return CLIPTextInstructionEncoder(CLIPTokenizer.from_pretrained(tokenizer, local_files_only=True), model)


class FrozenEncoders:
    def __init__(self, cfg: EncodersConfig, device: torch.device, *, need_image: bool):
        def load(what: str, path: str | None, fn):
            try:
                return fn()
            except TrainConfigError:
                raise
            except (OSError, ValueError, KeyError) as e:  # CheckpointError is a ValueError naming the file
                raise TrainConfigError(f"encoders.{what}: {e}" if str(path) in str(e) else
                                       f"encoders.{what}: {path} could not be loaded ({e})") from None

        self.device = device
        self.text = load("text_encoder", cfg.text_encoder, lambda: load_text_model(cfg.text_encoder, cfg.tokenizer))
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
        self.vae = None  # not needed when every dataset is precomputed latents
        if cfg.vae:
            self.vae = load("vae", cfg.vae, lambda: load_vae(cfg.vae))
            self.vae.requires_grad_(False).eval().to(device)
        self.cache = Path(cfg.latent_cache) if cfg.latent_cache else None
        if self.cache:
            self.cache.mkdir(parents=True, exist_ok=True)
        self._vae_id = hashlib.sha1(str(Path(cfg.vae).resolve()).encode()).hexdigest()[:8]
        self._null: torch.Tensor | None = None
        self._text_cache: dict[str, torch.Tensor] = {}

    @property
    def text_width(self) -> int:
        return int(self.text.text_model.config.hidden_size)

    @property
    def image_width(self) -> int | None:
        return int(self.image.vision_model.config.projection_dim) if self.image else None

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """(B, 77, D) CLIP hidden states; "" is the null instruction. Each distinct text is encoded once
        (instructions come from a few templates, and the encoder is frozen)."""
        new = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if new:
            try:
                for text, hidden in zip(new, self.text.encode(new)):
                    self._text_cache[text] = hidden
            except VIDiffError as e:
                raise VIDiffError(f"training data: {e}") from None
        return torch.stack([self._text_cache[t] for t in texts])

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
