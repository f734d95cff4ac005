"""The project's own single-file format: one `.safetensors` holding the video UNet (`unet.*`), the
image-instruction MLP (`image_proj.*`, when the model has one) and the config as JSON in the metadata.

Metadata keys: `format` = "vidiff", `format_version` = "1", `config` = `VIDiffConfig.to_json()`, and
free-form provenance strings (`source`, `training_step`, ...). Save then load is bit-exact.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch

from ..config import VIDiffConfig
from ..errors import CheckpointError, VIDiffError
from ..model import VIDiffModel
from .detect import VIDIFF_FORMAT, identify
from .io import TensorFile, save_safetensors
from .ldm_unet import diffusers_to_ldm
from .motion_module import original_names
from .state import DTypeChoice, check_keys, empty_model, expected_shapes, materialize, resolve_dtype

FORMAT_VERSION = "1"


def save_vidiff(model: VIDiffModel, path: str | os.PathLike, *, dtype: torch.dtype | None = None,
                metadata: dict[str, str] | None = None) -> None:
    """Write `model` as a VIDiff checkpoint.

    Args:
        dtype: cast floating-point tensors to this dtype in the file (e.g. torch.float16); None keeps them.
        metadata: extra provenance strings stored in the file header.
    """
    if not str(path).endswith(".safetensors"):
        raise ValueError(f"{path}: VIDiff checkpoints are .safetensors files")
    state = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v)
             for k, v in model.state_dict().items()}
    header = {str(k): str(v) for k, v in (metadata or {}).items()}
    header.update(format=VIDIFF_FORMAT, format_version=FORMAT_VERSION, config=model.config.to_json())
    save_safetensors(state, path, header)


def read_config(tf: TensorFile) -> VIDiffConfig:
    """The config stored in a VIDiff file, or a CheckpointError saying what the file is instead."""
    kind = identify(tf.shapes, tf.metadata)
    if kind.kind != "vidiff":
        hint = (" Build a VIDiff model from it with a motion module (VIDiffModelFromParts)."
                if kind.kind in ("ip2p", "sd15") else "")
        raise CheckpointError(tf.path, f"not a VIDiff checkpoint; this file looks like {kind.description}.{hint}")
    if tf.metadata.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(tf.path, f"VIDiff format version {tf.metadata.get('format_version')!r} is not "
                                       f"supported by this version of the pack (it reads version {FORMAT_VERSION})")
    try:
        return VIDiffConfig.from_json(tf.metadata["config"])
    except (KeyError, TypeError, ValueError, AssertionError, json.JSONDecodeError) as e:
        raise CheckpointError(tf.path, f"VIDiff checkpoint has an unreadable config in its metadata ({e})") from None


def _open_checked(path: str | os.PathLike, beta_schedule: str) -> tuple[TensorFile, VIDiffModel]:
    """The open file and an empty (meta) model of its config with `beta_schedule` applied; the file's tensor
    names and shapes checked against that model."""
    tf = TensorFile(path)
    config = read_config(tf)
    try:
        config = config.with_beta_schedule(beta_schedule)
    except ValueError as e:
        raise VIDiffError(str(e)) from None
    model = empty_model(config)
    check_keys(tf.path, expected_shapes(model), tf.shapes, "VIDiff checkpoint for its stored config")
    return tf, model


def load_vidiff(path: str | os.PathLike, *, dtype: DTypeChoice = None,
                device: torch.device | str = "cpu", beta_schedule: str = "autoselect") -> VIDiffModel:
    """Load a VIDiff checkpoint.

    Args:
        dtype: weight dtype of the result; None keeps the file's dtypes (memory-mapped, the fastest); or a
            function of the parameter count that returns one.
        beta_schedule: autoselect (the schedule recorded in the file), sd15 or animatediff.
    """
    tf, model = _open_checked(path, beta_schedule)
    tf.convert_to(dtype := resolve_dtype(dtype, model))
    state = {k: tf.reader(k) for k in tf.keys()}  # read and converted one tensor at a time
    return materialize(model, state, tf.path, dtype=dtype, device=device)


@dataclass
class VIDiffParts:
    """A VIDiff checkpoint in the layouts a host builds its own model from (no diffusers model is made)."""

    config: VIDiffConfig
    unet: dict[str, torch.Tensor]  # spatial UNet, LDM names (`input_blocks.1.1.proj_in.weight`, ...)
    temporal: dict[str, torch.Tensor]  # temporal layers, original AnimateDiff names (`down_blocks.0.motion_modules…`)
    image_proj: dict[str, torch.Tensor]  # the image MLP's state (empty without one)


def read_vidiff_parts(path: str | os.PathLike, *, beta_schedule: str = "autoselect") -> VIDiffParts:
    """Read a VIDiff checkpoint, checked against its stored config, renamed for a host's own UNet.

    Args:
        beta_schedule: autoselect (the schedule recorded in the file), sd15 or animatediff.
    """
    tf, model = _open_checked(path, beta_schedule)
    config = model.config
    parts = VIDiffParts(config, {}, {}, {})
    for key in tf.keys():
        name = key.split(".", 1)[1]
        if key.startswith("image_proj."):
            parts.image_proj[name] = tf.take(key)
        elif "motion_modules" in name:
            value = tf.take(key)
            for original in original_names(name):
                parts.temporal[original] = value
        else:
            parts.unet[diffusers_to_ldm(name, config.unet)] = tf.take(key)
    return parts
