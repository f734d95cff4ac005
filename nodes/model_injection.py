"""VIDiff's temporal layers on the host's MODEL, through the host's public patch APIs only.

A clone of the host's ModelPatcher gets:
- object patches replacing each UNet block (a `TimestepEmbedSequential`) by one that runs the same children,
  under the same names, plus a temporal layer (`vidiff_model.temporal.TemporalModule`, built from the host's
  `comfy.ops` so fp8/bf16 storage, manual cast and low-VRAM partial loading treat it like the rest of the
  UNet). Names are kept so LoRA and other weight patches keyed on them still land. The host applies object
  patches while the clone is loaded and restores them on unload: the input MODEL is never changed;
- a `forward_timestep_embed_patch` that hands the temporal layers the frame count;
- a DIFFUSION_MODEL wrapper that counts the frames of each clip (the host batches conds along the batch axis,
  each cond chunk being one clip: frames = batch / chunks);
- for v1 modules (`use_inflated_groupnorm: false`), object patches on the resnets' GroupNorm `forward` so they
  take their statistics over the clip's frames, as the original does;
- `model_sampling` as an object patch (the noise schedule the module was trained with);
- an attachment recording what VIDiff needs to know about the model (frame limit, schedule, image MLP).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

import comfy.ops
import comfy.patcher_extension
import torch
from comfy.ldm.modules.attention import SpatialTransformer, optimized_attention
from comfy.ldm.modules.diffusionmodules.openaimodel import (Downsample, ResBlock, TimestepEmbedSequential, UNetModel,
                                                            Upsample)

from ..vidiff_model.config import VIDiffConfig
from ..vidiff_model.errors import CheckpointError, LatentError, VIDiffError
from ..vidiff_model.temporal import TemporalModule
from .host import model_sampling

ATTACHMENT = "vidiff"
MOTION_CHILD = "vidiff_motion"  # the temporal layer's name inside a UNet block
FRAMES_KEY = "vidiff_frames"  # transformer_options entry the DIFFUSION_MODEL wrapper sets
SD15_CONTEXT_DIM = 768
_MODULE = re.compile(r"^((?:down_blocks|up_blocks)\.\d+\.motion_modules\.\d+|mid_block\.motion_modules\.0)\.(.+)$")


@dataclass
class FrameCount:
    """Frames per clip of the UNet call in progress (set by the wrapper, read by v1's clip-wide norms)."""

    value: int | None = None


@dataclass(frozen=True)
class VIDiffAttachment:
    """What travels with a MODEL that has VIDiff's temporal layers."""

    name: str  # e.g. the motion module's file name
    version: str  # v1 / v2 / v3 (AnimateDiff module) or "vidiff" (a VIDiff checkpoint)
    config: VIDiffConfig  # frame limit, norms, temporal heads, schedule, prediction type, image MLP, tokens
    image_proj: torch.nn.Module | None = None  # a VIDiff checkpoint's image-instruction MLP
    frames: FrameCount = field(default_factory=FrameCount, compare=False)

    @property
    def frame_limit(self) -> int:
        return self.config.unet.motion_max_seq_length


def vidiff_attachment(model) -> VIDiffAttachment | None:
    return model.get_attachment(ATTACHMENT)


# AnimateDiff-Evolved keeps the motion models it injects as the MODEL's additional models under this key
# (its ModelPatcherHelper.ADE); they go into the same UNet blocks as VIDiff's temporal layers.
ANIMATEDIFF_EVOLVED_KEY = "ADE"


def check_no_other_motion_model(model, input_name: str = "model") -> None:
    """One clear line instead of two temporal stacks in one UNet (VIDiff's and AnimateDiff-Evolved's)."""
    if model.get_additional_models_with_key(ANIMATEDIFF_EVOLVED_KEY):
        raise VIDiffError(f"{input_name}: this MODEL already carries an AnimateDiff-Evolved motion model; VIDiff "
                          "adds its own temporal layers, and two stacks in one UNet do not mix. Connect the model from "
                          "the checkpoint loader (before AnimateDiff-Evolved's loader), or sample with "
                          "AnimateDiff-Evolved alone")


def frames_per_clip(x: torch.Tensor, transformer_options: dict) -> int:
    """Each cond the host batched is one clip of x.shape[0] / chunks frames (frames are the batch)."""
    if FRAMES_KEY in transformer_options:
        return transformer_options[FRAMES_KEY]
    chunks = len(transformer_options.get("cond_or_uncond") or [0])
    if x.shape[0] % chunks:
        raise LatentError(f"model: a batch of {x.shape[0]} is not {chunks} equal clips; VIDiff's frames are the "
                          "latent's batch, so every conditioning must cover the whole video")
    return x.shape[0] // chunks


def _frames_wrapper(count: FrameCount):
    def wrapper(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        transformer_options.pop(FRAMES_KEY, None)  # a count left from another call must not be read
        count.value = transformer_options[FRAMES_KEY] = frames_per_clip(x, transformer_options)
        try:
            return executor(x, timesteps, context, y, control, transformer_options, **kwargs)
        finally:
            count.value = None
            transformer_options.pop(FRAMES_KEY, None)
    return wrapper


def _temporal_handler(layer, x, emb, context, transformer_options, *args, **kwargs):
    """forward_timestep_embed_patch: the host calls this for each TemporalModule in a block."""
    return layer(x, frames_per_clip(x, transformer_options))


def _clip_norm_forward(norm: torch.nn.Module, count: FrameCount):
    """`forward` for a resnet GroupNorm of a v1 model: statistics over all frames of each clip (the original's
    plain GroupNorm on the 5-D video), instead of per frame."""
    cls_forward = type(norm).forward

    def forward(x: torch.Tensor) -> torch.Tensor:
        f = count.value or x.shape[0]  # outside a wrapped UNet call: the batch is one clip
        bf, c, h, w = x.shape
        video = x.reshape(bf // f, f, c, h, w).transpose(1, 2)  # (B, C, F, H, W)
        return cls_forward(norm, video).transpose(1, 2).reshape(bf, c, h, w)
    return forward


# -- checks ---------------------------------------------------------------------------------------------------
def check_sd15_unet(model, input_name: str = "model") -> UNetModel:
    """The host UNet of an SD-1.5-family MODEL, or an error naming what the MODEL is instead."""
    base = model.model
    unet = model.get_model_object("diffusion_model")
    config = getattr(getattr(base, "model_config", None), "unet_config", {}) or {}
    what = type(base).__name__
    if not isinstance(unet, UNetModel):
        raise VIDiffError(f"{input_name}: this is a {what} model; VIDiff's temporal layers go on an SD-1.5 or "
                          "InstructPix2Pix UNet (load one with Load Checkpoint)")
    if config.get("use_temporal_attention") or config.get("use_temporal_resblock"):
        raise VIDiffError(f"{input_name}: this {what} UNet already is a video model; connect an SD-1.5 or "
                          "InstructPix2Pix model")
    if config.get("context_dim") != SD15_CONTEXT_DIM or config.get("adm_in_channels") is not None:
        raise VIDiffError(f"{input_name}: this is a {what} UNet (cross-attention {config.get('context_dim')} wide); "
                          "VIDiff and the AnimateDiff SD-1.5 motion modules need an SD-1.5 or InstructPix2Pix model")
    check_no_other_motion_model(model, input_name)
    if vidiff_attachment(model) is not None:
        raise VIDiffError(f"{input_name}: this model already has temporal layers ({vidiff_attachment(model).name}); "
                          "connect the model from the checkpoint loader, before any motion module")
    return unet


def temporal_slots(unet: UNetModel) -> list[tuple[str, str, str]]:
    """(motion-module name, UNet block path, child the temporal layer follows) in AnimateDiff's order: after
    each resnet (and its attention) of every level, the mid block's attention, before any up/downsampler."""
    slots = []

    def after(block) -> str:
        return [n for n, m in host_layers(block) if isinstance(m, (ResBlock, SpatialTransformer))][-1]

    level, j = 0, 0
    for i, block in enumerate(unet.input_blocks):
        if i == 0:
            continue  # conv_in
        if isinstance(block[0], Downsample):
            level, j = level + 1, 0
        elif isinstance(block[0], ResBlock):
            slots.append((f"down_blocks.{level}.motion_modules.{j}", f"input_blocks.{i}", after(block)))
            j += 1
    if unet.middle_block is not None:
        attention = next(n for n, m in host_layers(unet.middle_block) if isinstance(m, SpatialTransformer))
        slots.append(("mid_block.motion_modules.0", "middle_block", attention))  # between attention and resnet 2
    level, j = 0, 0
    for i, block in enumerate(unet.output_blocks):
        slots.append((f"up_blocks.{level}.motion_modules.{j}", f"output_blocks.{i}", after(block)))
        j += 1
        if any(isinstance(m, Upsample) for m in block.children()):
            level, j = level + 1, 0
    return slots


def _block_width(block) -> int:
    return next(m for m in block.children() if isinstance(m, ResBlock)).out_channels


HOST_LAYERS = (ResBlock, SpatialTransformer, Downsample, Upsample)  # what the host's UNet blocks hold


def host_layers(block: TimestepEmbedSequential) -> list[tuple[str, torch.nn.Module]]:
    """The block's own layers under their own names ("0", "1", …). Another pack's modules put into the shared UNet in
    place while its MODEL is loaded (AnimateDiff-Evolved inserts its motion modules into these blocks, renumbering
    the layers after them, until it is unloaded) belong to that MODEL, not to this one."""
    return [(str(i), m) for i, m in enumerate(m for m in block.children() if isinstance(m, HOST_LAYERS))]


def _with_temporal(block: TimestepEmbedSequential, after: str, temporal: TemporalModule) -> TimestepEmbedSequential:
    """A new block running the block's own layers (same names) with `temporal` right after layer `after`."""
    out = TimestepEmbedSequential()
    for name, child in host_layers(block):
        out.add_module(name, child)
        if name == after:
            out.add_module(MOTION_CHILD, temporal)
    return out


def group_modules(tensors: dict[str, torch.Tensor], path: str) -> dict[str, dict[str, torch.Tensor]]:
    """Original-layout motion-module tensors grouped by module ("down_blocks.0.motion_modules.1")."""
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        m = _MODULE.match(key)
        if not m:
            raise CheckpointError(path, f"unexpected tensor {key} in a motion module")
        groups.setdefault(m[1], {})[m[2]] = value
    return groups


# -- the patch --------------------------------------------------------------------------------------------------
def add_temporal_layers(model, modules: dict[str, dict[str, torch.Tensor]], attachment: VIDiffAttachment, *,
                        path: str = "motion_module"):
    """A clone of `model` (host ModelPatcher of an SD-1.5-family UNet) with temporal layers.

    Args:
        modules: per motion-module name (`temporal_slots`' first field), its original-layout tensors.
        attachment: what the clone records about itself; its config gives the frame limit, the temporal heads,
            the norms (spatial "clip": v1's GroupNorms over the clip's frames) and the schedule.
        path: the weights' file, for error messages.
    """
    unet = check_sd15_unet(model)
    # v1 and v3 have no mid-block module; v2 has one
    slots = [s for s in temporal_slots(unet) if not s[1] == "middle_block" or s[0] in modules]
    want, have = [s[0] for s in slots], set(modules)
    if set(want) != have:
        missing, extra = sorted(set(want) - have), sorted(have - set(want))
        raise CheckpointError(path, f"its temporal layers do not fit this UNet (missing {missing[:3]}, extra "
                                    f"{extra[:3]}): is it a motion module for SD-1.5?")
    base, unet_config = model.model, attachment.config.unet
    dtype = base.get_dtype()
    ops = comfy.ops.pick_operations(dtype, getattr(base, "manual_cast_dtype", None), load_device=model.load_device)
    clone = model.clone()
    added = 0
    for name, block_path, after_child in slots:
        block = model.get_model_object(f"diffusion_model.{block_path}")
        width, tensors = _block_width(block), modules[name]
        found = tuple(tensors.get("temporal_transformer.proj_in.weight", torch.empty(0)).shape)
        if found != (width, width):
            raise CheckpointError(path, f"{name} is {found[0] if found else '?'} channels wide where the model's "
                                        f"{block_path} has {width}: the motion module is for another base model")
        temporal = TemporalModule(width, heads=unet_config.motion_num_attention_heads, max_len=attachment.frame_limit,
                                  ops=ops, attention=optimized_attention, dtype=dtype, device=model.offload_device,
                                  clip_norm=unet_config.temporal_norm == "clip")
        try:
            temporal.load_state_dict(tensors, strict=True)
        except RuntimeError as e:
            raise CheckpointError(path, f"{name}: {str(e).splitlines()[0]}") from None
        added += module_bytes(temporal)
        clone.add_object_patch(f"diffusion_model.{block_path}", _with_temporal(block, after_child, temporal))
    if unet_config.spatial_norm == "clip":
        _add_clip_norms(clone, unet, attachment.frames)
    clone.set_model_forward_timestep_embed_patch((TemporalModule, _temporal_handler))
    clone.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, ATTACHMENT,
                               _frames_wrapper(attachment.frames))
    clone.add_object_patch("model_sampling", model_sampling(attachment.config.beta_schedule,
                                                            clone.get_model_object("model_sampling")))
    clone.set_attachments(ATTACHMENT, attachment)
    # The host sizes a model once, from its modules before object patches: count the temporal layers (and the
    # image MLP) in, so its memory manager frees (or offloads) room for them too. Clones, LoRA and other patches
    # copy this size.
    clone.size = model.model_size() + added + module_bytes(attachment.image_proj)
    # New weights, new identity: the host skips loading a clone whose base is already fully loaded with the same
    # `patches_uuid` (ModelPatcher.partially_load returns early), which would leave the temporal layers on the
    # offload device with nothing casting them. A fresh uuid makes it unload and load the clone whole, as it does
    # for a LoRA.
    clone.patches_uuid = uuid.uuid4()
    return clone


def module_bytes(module: torch.nn.Module | None) -> int:
    """Bytes of a module's weights and buffers, as the host counts a model (comfy.model_management.module_size)."""
    if module is None:
        return 0
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


def _add_clip_norms(clone, unet: UNetModel, count: FrameCount) -> None:
    norms = {"out.0": unet.out[0]}
    blocks = [(f"input_blocks.{i}", b) for i, b in enumerate(unet.input_blocks)] + [("middle_block", unet.middle_block)]
    for path, block in blocks + [(f"output_blocks.{i}", b) for i, b in enumerate(unet.output_blocks)]:
        for name, layer in host_layers(block):  # the host's names, whatever another pack put in place
            if isinstance(layer, ResBlock):
                norms.update({f"{path}.{name}.in_layers.0": layer.in_layers[0],
                              f"{path}.{name}.out_layers.0": layer.out_layers[0]})
    for name, norm in norms.items():
        if not isinstance(norm, torch.nn.GroupNorm):
            raise VIDiffError(f"model: {name} is a {type(norm).__name__}, not a GroupNorm, so it cannot take the v1 "
                              "motion module's clip-wide statistics; use a v2 or v3 motion module with this model")
        clone.add_object_patch(f"diffusion_model.{name}.forward", _clip_norm_forward(norm, count))
