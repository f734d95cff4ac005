"""Instructions as the UNet sees them: CLIP text hidden states, optionally followed by image tokens.

A text instruction is CLIP ViT-L/14's last hidden state (77 x 768), exactly as SD-1.5 uses it. An
image instruction is a CLIP vision embedding passed through a small trainable MLP into K tokens.

Why the token axis: the paper says the image and text embeddings are concatenated "along the channel
dimension", but the cross-attention of SD-1.5 has `to_k`/`to_v` weights of width 768, so widening the
channels would change every pretrained attention weight. Appending K image tokens after the 77 text
tokens keeps those weights as they are (the IP-Adapter way of adding image prompts), so a model built
from InstructPix2Pix + AnimateDiff weights works unchanged and the MLP learns to speak the same
768-wide language.

A model with an image MLP always sees 77 + K tokens: when an instruction has no image, the K image
slots are zeros (zero keys and values under SD's bias-free projections). Training uses the same
representation, so "no image" is something the model learns, and all guidance branches batch together.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ImageInstructionConfig, VIDiffConfig
from .errors import InstructionError
from .temporal import TORCH_OPS


class ImageInstructionMLP(nn.Module):
    """CLIP vision embedding (B, E) -> K instruction tokens (B, K, D).

    Args:
        ops: namespace with Linear and LayerNorm (torch's by default). A host passes layers that cast their
            weights to each input's device and dtype (ComfyUI's `comfy.ops.manual_cast`); `follows_input` then
            tells `encode_instruction` to run the MLP where the embedding is instead of moving it to the weights.
    """

    def __init__(self, config: ImageInstructionConfig, token_dim: int, ops=None):
        super().__init__()
        self.config = config
        self.token_dim = token_dim
        self.follows_input = ops is not None
        ops = ops or TORCH_OPS
        self.net = nn.Sequential(
            ops.Linear(config.clip_embed_dim, config.hidden_dim),
            nn.GELU(),
            ops.Linear(config.hidden_dim, config.num_tokens * token_dim),
        )
        self.norm = ops.LayerNorm(token_dim)

    def forward(self, image_embeds: torch.Tensor) -> torch.Tensor:
        tokens = self.net(image_embeds)  # (B, K*D)
        tokens = tokens.reshape(image_embeds.shape[0], self.config.num_tokens, self.token_dim)  # (B, K, D)
        return self.norm(tokens)


def check_text_hidden(text_hidden: torch.Tensor, config: VIDiffConfig, name: str = "instruction") -> None:
    """Raise InstructionError unless `text_hidden` is (B, 77, D) CLIP hidden states for this model."""
    d = config.unet.cross_attention_dim
    if not isinstance(text_hidden, torch.Tensor) or text_hidden.ndim != 3:
        shape = tuple(text_hidden.shape) if isinstance(text_hidden, torch.Tensor) else type(text_hidden).__name__
        raise InstructionError(
            f"{name}: expected CLIP text hidden states of shape (batch, {config.text_tokens}, {d}), got {shape}"
        )
    b, t, w = text_hidden.shape
    if w != d:
        hint = {1024: " (that is CLIP ViT-H / SD 2.x)", 1280: " (that is CLIP-G / SDXL)",
                2048: " (that is SDXL's CLIP-L + CLIP-G)", 4096: " (that is a T5 encoder)"}.get(w, "")
        raise InstructionError(
            f"{name}: hidden states are {w} wide{hint}; this model needs CLIP ViT-L/14 text hidden states "
            f"{d} wide, as SD-1.5 uses them: load the SD-1.5 CLIP-L text encoder"
        )
    if t != config.text_tokens:
        raise InstructionError(
            f"{name}: got {t} text tokens; this model takes exactly {config.text_tokens} (one CLIP window). "
            f"An instruction longer than {config.text_tokens - 2} tokens must be shortened"
        )


def check_image_embeds(image_embeds: torch.Tensor, batch: int, config: VIDiffConfig,
                       name: str = "image_instruction") -> None:
    """Raise InstructionError unless `image_embeds` fits this model's image MLP."""
    if config.image_instruction is None:
        raise InstructionError(
            f"{name}: this model has no image-instruction MLP (it was built from text-only weights, e.g. "
            "InstructPix2Pix + AnimateDiff); use a text instruction or a VIDiff checkpoint trained with images"
        )
    e = config.image_instruction.clip_embed_dim
    if image_embeds.ndim != 2 or image_embeds.shape[1] != e:
        raise InstructionError(
            f"{name}: expected a CLIP vision embedding of shape (batch, {e}) (CLIP ViT-L/14 image_embeds), "
            f"got {tuple(image_embeds.shape)}"
        )
    if image_embeds.shape[0] not in (1, batch):
        raise InstructionError(
            f"{name}: {image_embeds.shape[0]} image embeddings for {batch} text instructions; give 1 or {batch}"
        )


def join_instruction(text_hidden: torch.Tensor, image_tokens: torch.Tensor | None,
                     config: VIDiffConfig) -> torch.Tensor:
    """Text (B, 77, D) + image tokens (B, K, D) or None -> (B, 77 + K, D) (K = 0 without an MLP)."""
    if config.image_instruction is None:
        return text_hidden
    if image_tokens is None:  # no image: K zero tokens (see the module docstring)
        b, _, d = text_hidden.shape
        image_tokens = text_hidden.new_zeros(b, config.image_instruction.num_tokens, d)
    return torch.cat([text_hidden, image_tokens.to(text_hidden.dtype)], dim=1)


def encode_instruction(config: VIDiffConfig, image_proj: nn.Module | None, text_hidden: torch.Tensor,
                       image_embeds: torch.Tensor | None = None, *, device: torch.device | None = None,
                       dtype: torch.dtype | None = None) -> torch.Tensor:
    """Instruction tokens for a model of `config` with image MLP `image_proj` (None without one).

    Args:
        text_hidden: CLIP ViT-L/14 last hidden states (B, 77, 768); the empty string's for an image-only one.
        image_embeds: optional CLIP vision embeddings (B or 1, 768).
        device, dtype: where the tokens go (default: the text's).
    Returns:
        (B, 77 + K, 768) tokens; K = 0 for a model without an image MLP.
    """
    check_text_hidden(text_hidden, config)
    device = device or text_hidden.device
    dtype = dtype or text_hidden.dtype
    image_tokens = None
    if image_embeds is not None:
        check_image_embeds(image_embeds, text_hidden.shape[0], config)
        if getattr(image_proj, "follows_input", False):  # its weights are cast to the embedding per call
            tokens = image_proj(image_embeds)  # (B, K, D)
        else:
            weight = next(image_proj.parameters())
            tokens = image_proj(image_embeds.to(device=weight.device, dtype=weight.dtype))  # (B, K, D)
        image_tokens = tokens.to(device=device, dtype=dtype).expand(text_hidden.shape[0], -1, -1)
    return join_instruction(text_hidden.to(device=device, dtype=dtype), image_tokens, config)
