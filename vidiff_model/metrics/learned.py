"""Metrics that need a learned backbone. They run only on weights the user points to (a local
folder); without them the metric is reported as unavailable, never downloaded.

- CLIP text–video alignment: mean over frames of 100 · cos(CLIP image embedding, CLIP text embedding).
- CLIP frame consistency: mean over consecutive frames of 100 · cos(embedding_t, embedding_t+1).
Both take a transformers CLIPModel folder (e.g. openai/clip-vit-large-patch14 saved locally).
LPIPS and FID need their own backbones (AlexNet/VGG with LPIPS heads, Inception-v3); this version
does not compute them and reports why.
"""

from __future__ import annotations

import os

import torch

from ..clip_encoders import clip_preprocess

UNAVAILABLE_LPIPS = "unavailable: LPIPS is not implemented in this version"
UNAVAILABLE_FID = "unavailable: FID is not implemented in this version"


class CLIPScorer:
    """CLIP text–video alignment and frame consistency from a local CLIPModel folder."""

    def __init__(self, path: str | os.PathLike):
        from transformers import CLIPModel, CLIPTokenizer

        self.model = CLIPModel.from_pretrained(str(path), local_files_only=True).eval()
        self.tokenizer = CLIPTokenizer.from_pretrained(str(path), local_files_only=True)

    @torch.no_grad()
    def image_embeddings(self, frames: torch.Tensor) -> torch.Tensor:
        pixels = clip_preprocess(frames, self.model.config.vision_config.image_size)
        emb = self.model.get_image_features(pixel_values=pixels)
        return torch.nn.functional.normalize(getattr(emb, "pooler_output", emb), dim=-1)

    @torch.no_grad()
    def text_embedding(self, text: str) -> torch.Tensor:
        ids = self.tokenizer([text], padding=True, truncation=True, return_tensors="pt")
        emb = self.model.get_text_features(**ids)
        return torch.nn.functional.normalize(getattr(emb, "pooler_output", emb), dim=-1)

    def scores(self, frames: torch.Tensor, text: str | None) -> dict[str, float]:
        image = self.image_embeddings(frames)  # (F, D)
        out = {"clip_frame_consistency": float(100 * (image[:-1] * image[1:]).sum(-1).mean())
               if len(image) > 1 else float("nan")}
        if text:
            out["clip_text_alignment"] = float(100 * (image @ self.text_embedding(text).T).mean())
        return out
