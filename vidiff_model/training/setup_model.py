"""The model a training stage starts from, what it trains, and the module the engine wraps.

Stage 2 (t2v): temporal layers only; the spatial UNet is frozen. The source input is always zeros, so
the 8-channel model with its zero-initialised extra conv_in channels is exactly SD-1.5's 4-channel
text-to-video UNet (and its output is still a VIDiff file that stage 3 starts from).
Stage 3 (v2v): the whole UNet and the image-instruction MLP.
"""

from __future__ import annotations

import torch
from torch import nn

from ..checkpoints.from_parts import build_vidiff_from_parts
from ..checkpoints.native import load_vidiff
from ..config import ImageInstructionConfig, VIDiffConfig, mini_config, sd15_config, tiny_config
from ..instruction import ImageInstructionMLP, join_instruction
from ..model import VIDiffModel
from .config import TrainConfig
from .errors import TrainConfigError


def _image_config(text_width: int, image_width: int | None, size: str) -> ImageInstructionConfig:
    base = ImageInstructionConfig() if size == "sd15" else ImageInstructionConfig(num_tokens=2, hidden_dim=64)
    return ImageInstructionConfig(clip_embed_dim=image_width or base.clip_embed_dim, num_tokens=base.num_tokens,
                                  hidden_dim=base.hidden_dim)


def starting_model(cfg: TrainConfig, text_width: int, image_width: int | None) -> tuple[VIDiffModel, list[str]]:
    """The model at step 0 and notes on how it was made (fp32 weights)."""
    m = cfg.model
    want_image = cfg.stage == "v2v" and m.image_instruction
    notes: list[str] = []
    if m.random:
        config = {"tiny": lambda: tiny_config(image_instruction=False, cross_attention_dim=text_width),
                  "mini": mini_config, "sd15": sd15_config}[m.random]()
        if want_image:
            config = config.with_image_instruction(_image_config(text_width, image_width, m.random))
        model = VIDiffModel(config)
        notes.append(f"random {m.random} model")
    elif m.vidiff:
        model = load_vidiff(m.vidiff, dtype=torch.float32)
        notes.append(f"from {m.vidiff}")
        if want_image and model.config.image_instruction is None:
            size = "sd15" if model.config.unet.block_out_channels == sd15_config().unet.block_out_channels else "tiny"
            model = _with_fresh_image_mlp(model, _image_config(text_width, image_width, size))
            notes.append("image-instruction MLP added, freshly initialised")
    else:
        image = ImageInstructionConfig(clip_embed_dim=image_width or 768) if want_image else None
        model, report = build_vidiff_from_parts(m.unet, m.motion_module, use_ema=m.use_ema, dtype=torch.float32,
                                                image_instruction=image)
        notes.append(f"from {m.unet} + {m.motion_module}: {report.summary()}")
    if m.prediction_type and m.prediction_type != model.config.prediction_type:
        from dataclasses import replace

        model.config = replace(model.config, prediction_type=m.prediction_type)  # checked by VIDiffConfig
        notes.append(f"now predicting {m.prediction_type}")
    c = model.config
    if c.unet.cross_attention_dim != text_width:
        raise TrainConfigError(f"encoders.text_encoder: its hidden states are {text_width} wide but the model "
                               f"cross-attends to {c.unet.cross_attention_dim}; use the text encoder the model "
                               "was made for (CLIP ViT-L/14 for SD-1.5)")
    if want_image and image_width is not None and c.image_instruction.clip_embed_dim != image_width:
        raise TrainConfigError(f"encoders.image_encoder: its embeddings are {image_width} wide but the model's "
                               f"image MLP takes {c.image_instruction.clip_embed_dim}")
    if cfg.data.frames > c.unet.motion_max_seq_length:
        raise TrainConfigError(f"data.frames: {cfg.data.frames} frames; the motion module attends over at most "
                               f"{c.unet.motion_max_seq_length}")
    return model, notes


def _with_fresh_image_mlp(model: VIDiffModel, image: ImageInstructionConfig) -> VIDiffModel:
    bigger = VIDiffModel(model.config.with_image_instruction(image))
    missing, unexpected = bigger.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("image_proj.") for k in missing), (missing, unexpected)
    return bigger


def trainable_parameters(model: VIDiffModel, stage: str) -> list[nn.Parameter]:
    """Set requires_grad by stage and return the trained parameters."""
    for name, p in model.named_parameters():
        p.requires_grad_(stage == "v2v" or "motion_modules" in name)
    params = [p for p in model.parameters() if p.requires_grad]
    assert params, f"stage {stage}: nothing to train"
    return params


class TrainingModule(nn.Module):
    """One forward for everything that trains, so a distributed wrapper sees every gradient.

    Image tokens are computed for every row and multiplied by `has_image`: rows without an image get
    the zero tokens of "no image" (instruction.py) while the MLP stays in the graph.
    """

    def __init__(self, model: VIDiffModel):
        super().__init__()
        self.model = model

    @property
    def config(self) -> VIDiffConfig:
        return self.model.config

    def forward(self, noisy: torch.Tensor, source: torch.Tensor, timesteps: torch.Tensor, text: torch.Tensor,
                image_embeds: torch.Tensor | None, has_image: torch.Tensor) -> torch.Tensor:
        image_tokens = None
        proj: ImageInstructionMLP | None = self.model.image_proj
        if proj is not None and image_embeds is not None:
            image_tokens = proj(image_embeds.to(text.dtype)) * has_image.view(-1, 1, 1).to(text.dtype)  # (B, K, D)
        tokens = join_instruction(text, image_tokens, self.model.config)  # (B, 77 + K, D)
        return self.model(noisy, source, timesteps, tokens)  # (B, 4, F, h, w)
