"""Build a VIDiff model from files users already have: an InstructPix2Pix (or SD-1.5) single-file
checkpoint and an AnimateDiff SD-1.5 motion module.

The model computes what the motion module was trained with (guoyww/AnimateDiff configs/inference/*.yaml):
temporal norms per frame; the UNet's spatial GroupNorms over all frames for v1
(`use_inflated_groupnorm: false`), per frame for v2/v3; and, with `beta_schedule="autoselect"`, the
motion module's linear noise schedule ("animatediff"). The config records all three.
"""

from __future__ import annotations

import os

import torch

from ..config import ImageInstructionConfig, VideoUNetConfig, VIDiffConfig, sd15_config
from ..errors import CheckpointError, VIDiffError
from ..instruction import ImageInstructionMLP
from ..model import VIDiffModel
from .detect import identify, motion_version
from .io import TensorFile
from .ldm_unet import load_ldm_unet
from .motion_module import load_motion_module, motion_layout
from .state import DTypeChoice, LoadReport, empty_model, expected_shapes, materialize, resolve_dtype

UNET_KINDS = ("ip2p", "sd15")
# With an explicit (non-SD-1.5) UNet config, shape checks decide; detection cannot name the size.
UNET_KINDS_ANY_SIZE = UNET_KINDS + ("sd_unknown",)
MOTION_KINDS_ANY_SIZE = ("motion_module", "motion_module_unknown")
# motion-module version -> the UNet's spatial norm semantics it was trained with (`use_inflated_groupnorm`)
SPATIAL_NORM = {"v1": "clip", "v2": "per_frame", "v3": "per_frame"}
MOTION_BETA_SCHEDULE = "animatediff"  # every SD-1.5 version: linear betas 0.00085..0.012


def build_vidiff_from_parts(unet_path: str | os.PathLike, motion_path: str | os.PathLike, *,
                            use_ema: bool = False, dtype: DTypeChoice = torch.float32,
                            device: torch.device | str = "cpu",
                            image_instruction: ImageInstructionConfig | None = None,
                            unet_config: VideoUNetConfig | None = None,
                            beta_schedule: str = "autoselect") -> tuple[VIDiffModel, LoadReport]:
    """A VIDiff model whose spatial UNet comes from `unet_path` and temporal layers from `motion_path`.

    Args:
        unet_path: InstructPix2Pix (8-channel conv_in) or SD-1.5 (4-channel, inflated with zeros)
            checkpoint, LDM single-file layout (`model.diffusion_model.*`) or a bare LDM UNet.
        motion_path: AnimateDiff SD-1.5 motion module, v1/v2/v3, `.safetensors` or `.ckpt`.
        use_ema: take the UNet's EMA weights (`model_ema.*`).
        dtype: weight dtype of the result (None keeps the files' dtypes), or a function of the parameter
            count that returns one. Converting reads the files tensor by tensor, so the peak memory stays
            near the result's size.
        image_instruction: add a freshly initialised image-instruction MLP (a training start).
        unet_config: a non-SD-1.5 size (tests); its motion length, mid block and norms come from the file.
        beta_schedule: autoselect (the motion module's: animatediff), sd15 or animatediff; recorded in the config.
    """
    unet_file, motion_file = TensorFile(unet_path), TensorFile(motion_path)
    unet_kind = identify(unet_file.shapes, unet_file.metadata)
    motion_kind = identify(motion_file.shapes, motion_file.metadata)
    if unet_kind.kind not in (UNET_KINDS_ANY_SIZE if unet_config else UNET_KINDS):
        raise CheckpointError(unet_file.path, "expected an InstructPix2Pix or SD-1.5 checkpoint; "
                                              f"this file looks like {unet_kind.description}")
    if motion_kind.kind not in (MOTION_KINDS_ANY_SIZE if unet_config else ("motion_module",)):
        raise CheckpointError(motion_file.path, "expected an AnimateDiff SD-1.5 motion module (v1, v2 or v3); "
                                                f"this file looks like {motion_kind.description}")

    max_len, has_mid = motion_layout(motion_file)
    version = motion_kind.motion_version or motion_version(max_len, has_mid)
    layout = {"motion_max_seq_length": max_len, "use_motion_mid_block": has_mid,
              "temporal_norm": "per_frame", "spatial_norm": SPATIAL_NORM[version]}
    base = unet_config or sd15_config().unet
    config = VIDiffConfig(unet=VideoUNetConfig(**{**base.__dict__, **layout}), image_instruction=image_instruction)
    try:
        config = config.with_beta_schedule(beta_schedule, autoselect=MOTION_BETA_SCHEDULE)
    except ValueError as e:
        raise VIDiffError(str(e)) from None

    model = empty_model(config)
    shapes = expected_shapes(model)
    dtype = resolve_dtype(dtype, model)
    unet_file.convert_to(dtype)
    motion_file.convert_to(dtype)
    spatial = {k[len("unet."):]: s for k, s in shapes.items() if k.startswith("unet.") and "motion_modules" not in k}
    motion = {k[len("unet."):]: s for k, s in shapes.items() if k.startswith("unet.") and "motion_modules" in k}

    unet_state, report = load_ldm_unet(unet_file, unet_kind, spatial, config.unet, use_ema=use_ema)
    motion_state, motion_report = load_motion_module(motion_file, motion_kind, motion)
    report.merge(motion_report)
    report.notes.append(f"norms as AnimateDiff {version}: temporal per frame, spatial "
                        f"{'over the clip' if config.unet.spatial_norm == 'clip' else 'per frame'}; "
                        f"noise schedule {config.beta_schedule}")
    # Readers, converted one at a time by `materialize`; the motion module first, so a .ckpt's memory map
    # is released before the UNet's tensors are read.
    state = {f"unet.{k}": v for part in (motion_state, unet_state) for k, v in part.items()}
    del unet_state, motion_state
    if config.image_instruction is not None:
        fresh = ImageInstructionMLP(config.image_instruction, config.unet.cross_attention_dim)
        state.update({f"image_proj.{k}": v for k, v in fresh.state_dict().items()})
        report.notes.append("image-instruction MLP freshly initialised (train it before use)")
    return materialize(model, state, unet_file.path, dtype=dtype, device=device), report
