"""Typed configs of the VIDiff model, with the full SD-1.5 size and a tiny one for tests.

Everything needed to rebuild a model lives here, in code: loaders never fetch a config from a hub.
A config round-trips through JSON (it is stored in the metadata of the project's checkpoint file).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

SD15_LATENT_SCALING_FACTOR = 0.18215  # SD-1.5 VAE: scaled latent = raw latent * 0.18215
SD15_LATENT_CHANNELS = 4
CLIP_TEXT_TOKENS = 77  # CLIP ViT-L/14 context length used by SD-1.5

# What a GroupNorm takes its statistics over (vidiff_model/norm_semantics.py): each frame on its own,
# or all frames of the clip (window) together.
NORM_SEMANTICS = ("per_frame", "clip")
# Noise schedules: "sd15" = SD-1.5 / InstructPix2Pix (scaled_linear betas 0.00085..0.012); "animatediff" =
# what the AnimateDiff motion modules were trained with (linear betas 0.00085..0.012; diffusers "linear",
# ComfyUI "sqrt_linear"). "autoselect" (a load-time choice, never stored) keeps the recorded one.
BETA_SCHEDULES = ("sd15", "animatediff")
# What the UNet outputs: the noise ε (SD-1.5, InstructPix2Pix, AnimateDiff), or v = √ᾱ·ε − √(1−ᾱ)·x0, which
# VIDiffModel turns back into ε, so samplers, guidance and the host only ever see ε.
PREDICTION_TYPES = ("epsilon", "v_prediction")
BETA_SCHEDULE_CHOICES = ("autoselect",) + BETA_SCHEDULES
# A file written before these fields existed was made (and trained) with these semantics.
LEGACY_NORMS = {"temporal_norm": "clip", "spatial_norm": "per_frame"}
LEGACY_BETA_SCHEDULE = "sd15"


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}: unknown value {value!r}; choose one of {', '.join(choices)}")


@dataclass(frozen=True)
class VideoUNetConfig:
    """The SD-1.5 UNet with AnimateDiff temporal attention (diffusers `UNetMotionModel`).

    `cross_attn_blocks[i]` says whether down block i has spatial cross-attention; up blocks mirror it.
    `in_channels` is 8: the noisy target latent and the source-video latent, concatenated on channels.
    """

    in_channels: int = 8
    out_channels: int = 4
    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    cross_attn_blocks: tuple[bool, ...] = (True, True, True, False)
    layers_per_block: int = 2
    cross_attention_dim: int = 768
    num_attention_heads: int = 8
    norm_num_groups: int = 32
    motion_num_attention_heads: int = 8
    motion_max_seq_length: int = 32
    use_motion_mid_block: bool = True
    # Norm semantics, one of NORM_SEMANTICS. The defaults are the original AnimateDiff's: the temporal
    # transformer's GroupNorm per frame (all versions); the UNet's spatial GroupNorms per frame as v2/v3's
    # InflatedGroupNorm ("clip" for a v1 motion module: `use_inflated_groupnorm: false`).
    temporal_norm: str = "per_frame"
    spatial_norm: str = "per_frame"

    def __post_init__(self) -> None:
        _check_choice("temporal_norm", self.temporal_norm, NORM_SEMANTICS)
        _check_choice("spatial_norm", self.spatial_norm, NORM_SEMANTICS)
        # JSON gives lists back; keep tuples so configs compare and hash.
        object.__setattr__(self, "block_out_channels", tuple(self.block_out_channels))
        object.__setattr__(self, "cross_attn_blocks", tuple(bool(b) for b in self.cross_attn_blocks))
        assert len(self.block_out_channels) == len(self.cross_attn_blocks), (
            f"block_out_channels {self.block_out_channels} and cross_attn_blocks {self.cross_attn_blocks} "
            "must have one entry per UNet block"
        )
        assert self.in_channels == 2 * self.out_channels, (
            f"in_channels ({self.in_channels}) must be twice out_channels ({self.out_channels}): "
            "noisy target latent + source latent"
        )

    def diffusers_kwargs(self) -> dict:
        """Arguments for `diffusers.UNetMotionModel(**kwargs)`."""
        down = tuple("CrossAttnDownBlockMotion" if a else "DownBlockMotion" for a in self.cross_attn_blocks)
        up = tuple("CrossAttnUpBlockMotion" if a else "UpBlockMotion" for a in reversed(self.cross_attn_blocks))
        return dict(
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            down_block_types=down,
            up_block_types=up,
            block_out_channels=self.block_out_channels,
            layers_per_block=self.layers_per_block,
            cross_attention_dim=self.cross_attention_dim,
            num_attention_heads=self.num_attention_heads,
            norm_num_groups=self.norm_num_groups,
            motion_num_attention_heads=self.motion_num_attention_heads,
            motion_max_seq_length=self.motion_max_seq_length,
            use_motion_mid_block=self.use_motion_mid_block,
        )


@dataclass(frozen=True)
class ImageInstructionConfig:
    """The trainable MLP that turns a CLIP vision embedding into `num_tokens` instruction tokens.

    The input is CLIP ViT-L/14's projected image embedding (`image_embeds`, 768 wide), which is what
    ComfyUI's CLIPVisionEncode and transformers' CLIPVisionModelWithProjection both return.
    """

    clip_embed_dim: int = 768
    num_tokens: int = 4
    hidden_dim: int = 1024


@dataclass(frozen=True)
class VIDiffConfig:
    unet: VideoUNetConfig = field(default_factory=VideoUNetConfig)
    image_instruction: ImageInstructionConfig | None = None
    latent_scaling_factor: float = SD15_LATENT_SCALING_FACTOR
    text_tokens: int = CLIP_TEXT_TOKENS
    # The noise schedule the model was trained with (one of BETA_SCHEDULES); samplers and training use it.
    beta_schedule: str = "sd15"
    prediction_type: str = "epsilon"  # one of PREDICTION_TYPES; files without the field are "epsilon"

    def __post_init__(self) -> None:
        _check_choice("beta_schedule", self.beta_schedule, BETA_SCHEDULES)
        _check_choice("prediction_type", self.prediction_type, PREDICTION_TYPES)

    @property
    def instruction_tokens(self) -> int:
        """Tokens the UNet cross-attends to: 77 text tokens, then K image tokens if the model has the MLP."""
        k = self.image_instruction.num_tokens if self.image_instruction else 0
        return self.text_tokens + k

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "VIDiffConfig":
        raw = json.loads(text)
        image = raw.get("image_instruction")
        return cls(
            # a field missing from an older file means the semantics that file was made with
            unet=VideoUNetConfig(**{**LEGACY_NORMS, **raw["unet"]}),
            image_instruction=ImageInstructionConfig(**image) if image else None,
            latent_scaling_factor=float(raw.get("latent_scaling_factor", SD15_LATENT_SCALING_FACTOR)),
            text_tokens=int(raw.get("text_tokens", CLIP_TEXT_TOKENS)),
            beta_schedule=str(raw.get("beta_schedule", LEGACY_BETA_SCHEDULE)),
            prediction_type=str(raw.get("prediction_type", "epsilon")),
        )

    def with_image_instruction(self, image: ImageInstructionConfig | None) -> "VIDiffConfig":
        return replace(self, image_instruction=image)

    def with_beta_schedule(self, choice: str, autoselect: str | None = None) -> "VIDiffConfig":
        """This config with the noise schedule `choice` (one of BETA_SCHEDULE_CHOICES).

        Args:
            autoselect: what "autoselect" means here (the motion module's schedule when building from parts);
                None keeps the recorded one.
        """
        _check_choice("beta_schedule", choice, BETA_SCHEDULE_CHOICES)
        if choice == "autoselect":
            choice = autoselect or self.beta_schedule
        return replace(self, beta_schedule=choice)


def sd15_config(*, motion_max_seq_length: int = 32, use_motion_mid_block: bool = True,
                image_instruction: ImageInstructionConfig | None = None) -> VIDiffConfig:
    """The full-size model: SD-1.5 UNet (860 M) + an AnimateDiff SD-1.5 motion module (v2: 453 M)."""
    unet = VideoUNetConfig(motion_max_seq_length=motion_max_seq_length, use_motion_mid_block=use_motion_mid_block)
    return VIDiffConfig(unet=unet, image_instruction=image_instruction)


def tiny_config(*, image_instruction: bool = True, cross_attention_dim: int = 768) -> VIDiffConfig:
    """A few-MB model for tests (channels 32/64). It keeps CLIP-L's 768-wide tokens so it works with
    the host's real CLIP text encoder; pass a smaller `cross_attention_dim` for pure library tests."""
    unet = VideoUNetConfig(
        block_out_channels=(32, 64),
        cross_attn_blocks=(True, False),
        cross_attention_dim=cross_attention_dim,
        num_attention_heads=4,
        motion_num_attention_heads=4,
    )
    image = ImageInstructionConfig(clip_embed_dim=768, num_tokens=2, hidden_dim=64) if image_instruction else None
    return VIDiffConfig(unet=unet, image_instruction=image)


def mini_config() -> VIDiffConfig:
    """vidiff-mini, the model this project trains and ships (`vidiff_model.mini`): 16.7 M parameters
    (33 MB in fp16), three UNet levels (64/128/192 channels, cross-attention to CLIP-L's 768-wide tokens at
    every level, one layer per block), a motion module after every spatial layer (no mid-block module),
    AnimateDiff's original per-frame norms and SD-1.5's noise schedule. Chosen so that training fits in a
    session on a 2-core CPU and the demo (16 frames at 128², 20 steps, dual guidance) takes well under
    two minutes there; it reads only the text instructions it was trained on (no image MLP)."""
    unet = VideoUNetConfig(
        block_out_channels=(64, 128, 192),
        cross_attn_blocks=(True, True, True),
        layers_per_block=1,
        num_attention_heads=4,
        motion_num_attention_heads=4,
        motion_max_seq_length=32,
        use_motion_mid_block=False,
    )
    return VIDiffConfig(unet=unet, image_instruction=None)
