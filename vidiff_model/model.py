"""The VIDiff model: an 8-channel video UNet plus the optional image-instruction MLP.

Latent conventions (DESIGN §1.1):
- `noisy_latent` lives in SD-1.5's scaled latent space (raw VAE latent x 0.18215);
- `source_latent` enters unscaled, the VAE's raw latent, as in InstructPix2Pix SD-1.5 (and as the
  host's VAEEncode returns it).
Both are (B, 4, F, H, W); the UNet predicts the noise epsilon of the target, (B, 4, F, H, W).
"""

from __future__ import annotations

import torch
from diffusers import UNetMotionModel
from torch import nn

from .config import SD15_LATENT_CHANNELS, VIDiffConfig
from .errors import LatentError
from .instruction import ImageInstructionMLP, encode_instruction
from .norm_semantics import apply_norm_semantics


def alpha_bar_at(timestep: torch.Tensor | float, beta_schedule: str) -> torch.Tensor:
    """ᾱ at (possibly fractional) timesteps; shape of `timestep`. Between the schedule's integer steps log σ is
    linear, which is where the samplers (the host's and Karras-style ones) put a fractional timestep: at the
    σ they step to, ᾱ = 1 / (1 + σ²) exactly."""
    from .sampling import log_sigma_table  # sampling imports the model's neighbours; import when first needed

    table = log_sigma_table(beta_schedule)  # (1000,) float64 log σ_t, built once per schedule
    t = torch.as_tensor(timestep, dtype=torch.float64).cpu().clamp(0, len(table) - 1)
    lo = t.floor().long()
    hi = (lo + 1).clamp(max=len(table) - 1)
    log_sigma = table[lo] + (t - lo) * (table[hi] - table[lo])
    return 1.0 / (1.0 + torch.exp(2 * log_sigma))


def v_to_epsilon(v: torch.Tensor, noisy: torch.Tensor, timestep: torch.Tensor | float,
                 beta_schedule: str, sigma: float | None = None) -> torch.Tensor:
    """ε = √(1−ᾱ)·x_t + √ᾱ·v for x_t = √ᾱ·x0 + √(1−ᾱ)·ε and v = √ᾱ·ε − √(1−ᾱ)·x0 (Salimans & Ho 2022).
    A linear map per sample, so guidance combines ε exactly as it would combine v."""
    a = alpha_bar_at(timestep, beta_schedule) if sigma is None else torch.tensor(1.0 / (1.0 + float(sigma) ** 2))
    a = a.reshape(-1, 1, 1, 1, 1).to(v.device, torch.float32)
    return ((1 - a).sqrt() * noisy.float() + a.sqrt() * v.float()).to(v.dtype)


def build_video_unet(config: VIDiffConfig) -> UNetMotionModel:
    """The diffusers UNetMotionModel for `config.unet`, with the temporal output projections zeroed so
    fresh temporal layers start as the identity (AnimateDiff's initialisation), and its GroupNorms taking
    the statistics `config.unet` records (`norm_semantics`)."""
    unet = apply_norm_semantics(UNetMotionModel(**config.unet.diffusers_kwargs()), config.unet)
    for name, module in unet.named_modules():
        if name.endswith("motion_modules") and isinstance(module, nn.ModuleList):
            for motion_module in module:
                nn.init.zeros_(motion_module.proj_out.weight)
                nn.init.zeros_(motion_module.proj_out.bias)
    return unet


class VIDiffModel(nn.Module):
    """Predicts epsilon of the target video from the noisy target, the source video and an instruction."""

    def __init__(self, config: VIDiffConfig):
        super().__init__()
        self.config = config
        self.unet = build_video_unet(config)
        self.image_proj = (
            ImageInstructionMLP(config.image_instruction, config.unet.cross_attention_dim)
            if config.image_instruction is not None
            else None
        )

    # -- instructions -------------------------------------------------------------------------------
    def encode_instruction(self, text_hidden: torch.Tensor, image_embeds: torch.Tensor | None = None) -> torch.Tensor:
        """Instruction tokens for the UNet.

        Args:
            text_hidden: CLIP ViT-L/14 last hidden states (B, 77, 768). For an image-only instruction pass
                the encoding of the empty string.
            image_embeds: optional CLIP vision embeddings (B or 1, 768).
        Returns:
            (B, 77 + K, 768) tokens; K = 0 for a model without an image MLP.
        """
        return encode_instruction(self.config, self.image_proj, text_hidden, image_embeds, device=self.device,
                                  dtype=self.dtype)

    def null_instruction(self, null_text_hidden: torch.Tensor) -> torch.Tensor:
        """The null instruction for guidance: the empty string's encoding and no image."""
        return self.encode_instruction(null_text_hidden, None)

    # -- denoising ----------------------------------------------------------------------------------
    def forward(self, noisy_latent: torch.Tensor, source_latent: torch.Tensor, timestep: torch.Tensor | float,
                instruction: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
        """Args:
            noisy_latent: (B, 4, F, H, W) noisy target, scaled by `latent_scaling_factor`.
            source_latent: (B, 4, F, H, W) source video, raw VAE latent (unscaled); zeros for the null video.
            timestep: scalar or (B,) diffusion timestep in [0, 1000).
            instruction: (B, T, D) tokens from `encode_instruction`.
            sigma: the noise level `noisy_latent` was scaled for, when the sampler knows it; a v-prediction model
                then turns v into ε with ᾱ = 1 / (1 + σ²) (the host's samplers round the timestep the UNet sees
                to an integer step but scale the input for their exact σ).
        Returns:
            (B, 4, F, H, W) predicted noise.
        """
        self.check_latents(noisy_latent, source_latent)
        b, _, f, _, _ = noisy_latent.shape
        if instruction.ndim != 3 or instruction.shape[0] != b or instruction.shape[1:] != (
            self.config.instruction_tokens, self.config.unet.cross_attention_dim
        ):
            raise LatentError(
                f"instruction: expected tokens of shape ({b}, {self.config.instruction_tokens}, "
                f"{self.config.unet.cross_attention_dim}) from encode_instruction, got {tuple(instruction.shape)}"
            )
        x = torch.cat([noisy_latent, source_latent.to(noisy_latent.dtype)], dim=1)  # (B, 8, F, H, W)
        # diffusers' UNetMotionModel wants the text repeated for each frame: (B*F, T, D).
        context = instruction.to(x.dtype).repeat_interleave(f, dim=0)
        out = self.unet(x, timestep, encoder_hidden_states=context, return_dict=False)[0]  # (B, 4, F, H, W)
        if self.config.prediction_type == "v_prediction":
            out = v_to_epsilon(out, noisy_latent, timestep, self.config.beta_schedule, sigma)
        return out

    def check_latents(self, noisy_latent: torch.Tensor, source_latent: torch.Tensor) -> None:
        """Raise LatentError unless both latents are (B, 4, F, H, W) of equal shape and F fits the model."""
        for name, lat in (("noisy_latent", noisy_latent), ("source_latent", source_latent)):
            if lat.ndim != 5 or lat.shape[1] != SD15_LATENT_CHANNELS:
                raise LatentError(
                    f"{name}: expected an SD-1.5 video latent of shape (batch, {SD15_LATENT_CHANNELS}, frames, "
                    f"height/8, width/8), got {tuple(lat.shape)}"
                )
        if noisy_latent.shape != source_latent.shape:
            raise LatentError(
                f"source_latent {tuple(source_latent.shape)} and noisy_latent {tuple(noisy_latent.shape)} differ"
            )
        frames, limit = noisy_latent.shape[2], self.config.unet.motion_max_seq_length
        if frames > limit:
            raise LatentError(
                f"{frames} frames in one clip; this motion module attends over at most {limit}: "
                "sample longer videos in clips (long-video settings)"
            )

    @property
    def device(self) -> torch.device:
        return self.unet.conv_in.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.conv_in.weight.dtype

    def num_parameters(self) -> dict[str, int]:
        """Parameter counts by part (buffers such as positional tables not included)."""
        spatial = sum(p.numel() for n, p in self.unet.named_parameters() if "motion_modules" not in n)
        motion = sum(p.numel() for n, p in self.unet.named_parameters() if "motion_modules" in n)
        image = sum(p.numel() for p in self.image_proj.parameters()) if self.image_proj is not None else 0
        return {"unet": spatial, "motion": motion, "image_mlp": image, "total": spatial + motion + image}
