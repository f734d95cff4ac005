"""The library's own CLIP encoders (transformers), for the command line and training.

Inside ComfyUI the host's CLIP and CLIP vision nodes do this work and the nodes pass their outputs
to `VIDiffModel.encode_instruction`; these classes produce the same tensors without the host:
- text: CLIP ViT-L/14 `last_hidden_state` (B, 77, 768), final layer norm applied, as SD-1.5 uses it;
- image: CLIP ViT-L/14 `image_embeds` (B, 768), the projected embedding ComfyUI's CLIPVisionEncode gives.
Everything loads from local folders (`local_files_only=True`): nothing is downloaded.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from .config import CLIP_TEXT_TOKENS
from .errors import InstructionError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class CLIPTextInstructionEncoder:
    """Instruction text -> CLIP hidden states (B, 77, D)."""

    def __init__(self, tokenizer, text_model):
        self.tokenizer = tokenizer
        self.text_model = text_model.eval().requires_grad_(False)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, tokenizer_path: str | os.PathLike | None = None,
                        dtype: torch.dtype = torch.float32) -> "CLIPTextInstructionEncoder":
        """Load from local transformers folders (e.g. an SD-1.5 repo's `text_encoder` and `tokenizer`)."""
        from transformers import CLIPTextModel, CLIPTokenizer

        tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_path or path), local_files_only=True)
        model = CLIPTextModel.from_pretrained(str(path), local_files_only=True, dtype=dtype)
        return cls(tokenizer, model)

    @torch.no_grad()
    def encode(self, texts: list[str] | str) -> torch.Tensor:
        """Args:
            texts: instructions; "" gives the null instruction used for guidance.
        Returns:
            (B, 77, D) last hidden states. An instruction over 77 tokens raises InstructionError.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        for text in texts:
            n = len(self.tokenizer(text).input_ids)  # with start and end tokens
            if n > CLIP_TEXT_TOKENS:
                raise InstructionError(
                    f"instruction: {n} tokens, but CLIP takes at most {CLIP_TEXT_TOKENS} "
                    f"({CLIP_TEXT_TOKENS - 2} without its start and end tokens); shorten: {text[:60]!r}..."
                )
        ids = self.tokenizer(texts, padding="max_length", max_length=CLIP_TEXT_TOKENS, return_tensors="pt").input_ids
        ids = ids.to(self.text_model.device)
        return self.text_model(input_ids=ids).last_hidden_state  # (B, 77, D)


def clip_preprocess(images: torch.Tensor, size: int = 224) -> torch.Tensor:
    """(B, H, W, 3) RGB in [0, 1] -> (B, 3, size, size) CLIP input: shorter side resized to `size`
    (bicubic), centre crop, CLIP mean/std normalisation."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise InstructionError(f"image_instruction: expected RGB images (batch, height, width, 3), got {tuple(images.shape)}")
    x = images.permute(0, 3, 1, 2).float()  # (B, 3, H, W)
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    top, left = (nh - size) // 2, (nw - size) // 2
    x = x[:, :, top:top + size, left:left + size]
    mean = torch.tensor(CLIP_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


class CLIPImageInstructionEncoder:
    """Instruction image -> CLIP projected image embedding (B, 768)."""

    def __init__(self, vision_model):
        self.vision_model = vision_model.eval().requires_grad_(False)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, dtype: torch.dtype = torch.float32) -> "CLIPImageInstructionEncoder":
        from transformers import CLIPVisionModelWithProjection

        return cls(CLIPVisionModelWithProjection.from_pretrained(str(path), local_files_only=True, dtype=dtype))

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) in [0, 1] -> (B, 768) `image_embeds`."""
        size = self.vision_model.config.image_size
        pixels = clip_preprocess(images, size).to(self.vision_model.device, self.vision_model.dtype)
        return self.vision_model(pixel_values=pixels).image_embeds
