"""Loading a VIDiff model as a host MODEL: from the project's checkpoint (InstructPix2Pix/SD-1.5 + AnimateDiff
go through the host's Load Checkpoint and VIDiff Apply Motion Module)."""

from __future__ import annotations

import folder_paths
from comfy_api.latest import io

import comfy.ops
import comfy.sd
import torch

from ..vidiff_model import VIDiffError
from ..vidiff_model.checkpoints.native import read_vidiff_parts
from ..vidiff_model.config import BETA_SCHEDULE_CHOICES
from ..vidiff_model.instruction import ImageInstructionMLP
from .host import MOTION_FOLDER, SCHEDULE_TOOLTIP, VIDIFF_FOLDER, model_path
from .host_unet import host_unet_model
from .model_injection import VIDiffAttachment, add_temporal_layers, group_modules
from .motion import apply_motion_module
from .types import DTYPE_CHOICES

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}  # "auto": the host's choice

_DTYPE_TOOLTIP = "Weight dtype. auto: what the host picks for its device (fp16/bf16 on a GPU, fp32 on the CPU)."



def _schedule_input(auto: str) -> io.Combo.Input:
    return io.Combo.Input("beta_schedule", options=list(BETA_SCHEDULE_CHOICES), default="autoselect", optional=True,
                          tooltip=SCHEDULE_TOOLTIP.format(auto=auto))


class VIDiffModelLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VIDiffModelLoader",
            display_name="Load VIDiff Model",
            category="VIDiff/loaders",
            description="Loads a VIDiff checkpoint (one .safetensors: video UNet, image-instruction MLP, config) "
                        "from models/vidiff into the host's own UNet with VIDiff's temporal layers: a MODEL that "
                        "LoRA loaders, model patches and the host's samplers work with.",
            inputs=[
                io.Combo.Input("model_name", options=folder_paths.get_filename_list(VIDIFF_FOLDER),
                               tooltip="A VIDiff checkpoint in models/vidiff (made by training or by "
                                       "`python -m vidiff_model build`)."),
                io.Combo.Input("weight_dtype", options=DTYPE_CHOICES, default="auto", tooltip=_DTYPE_TOOLTIP),
                _schedule_input("the one recorded in the file"),
            ],
            outputs=[io.Model.Output(display_name="model", tooltip="The VIDiff model (frames are the latent's "
                                                                   "batch).")],
        )

    @classmethod
    def execute(cls, model_name, weight_dtype, beta_schedule="autoselect") -> io.NodeOutput:
        path = model_path(VIDIFF_FOLDER, model_name, "model_name")
        return io.NodeOutput(load_vidiff_model(path, model_name, weight_dtype, beta_schedule))


def load_vidiff_model(path: str, name: str, weight_dtype: str = "auto", beta_schedule: str = "autoselect"):
    """A VIDiff checkpoint as a host MODEL: the host's UNet configured from the file's config (v-prediction
    included), VIDiff's temporal layers, and the image MLP and config in the MODEL's attachment."""
    parts = read_vidiff_parts(path, beta_schedule=beta_schedule)
    config = parts.config
    model = host_unet_model(parts.unet, num_heads=config.unet.num_attention_heads,
                            v_prediction=config.prediction_type == "v_prediction", dtype=DTYPES.get(weight_dtype),
                            name="model_name")
    image_proj = None
    if config.image_instruction is not None:
        # host layers casting their weights to each input (device and dtype): the MLP runs where the CLIP vision
        # embedding is, whatever the host did with memory
        image_proj = ImageInstructionMLP(config.image_instruction, config.unet.cross_attention_dim,
                                         ops=comfy.ops.manual_cast)
        image_proj.load_state_dict({k: v.float() for k, v in parts.image_proj.items()})
        image_proj.eval().requires_grad_(False)
    attachment = VIDiffAttachment(name=name, version="vidiff", config=config, image_proj=image_proj)
    return add_temporal_layers(model, group_modules(parts.temporal, path), attachment, path=path)


class VIDiffModelFromParts(io.ComfyNode):
    """Retired: Load Checkpoint -> VIDiff Apply Motion Module does this on the host's MODEL."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VIDiffModelFromParts",
            display_name="VIDiff Model From Parts (retired)",
            category="VIDiff/loaders",
            description="Retired: use Load Checkpoint and VIDiff Apply Motion Module. Loads an InstructPix2Pix (or "
                        "SD-1.5) checkpoint with the host's loader and adds an AnimateDiff SD-1.5 motion module.",
            is_deprecated=True,
            inputs=[
                io.Combo.Input("unet_checkpoint", options=folder_paths.get_filename_list("checkpoints"),
                               tooltip="InstructPix2Pix (8-channel) or SD-1.5 single-file checkpoint from "
                                       "models/checkpoints."),
                io.Combo.Input("motion_module", options=folder_paths.get_filename_list(MOTION_FOLDER),
                               tooltip="AnimateDiff SD-1.5 motion module from models/animatediff_models."),
                io.Combo.Input("weight_dtype", options=DTYPE_CHOICES, default="auto", tooltip=_DTYPE_TOOLTIP),
                _schedule_input("the motion module's, animatediff"),
            ],
            outputs=[io.Model.Output(display_name="model", tooltip="The MODEL with temporal layers.")],
        )

    @classmethod
    def execute(cls, unet_checkpoint, motion_module, weight_dtype, beta_schedule="autoselect") -> io.NodeOutput:
        unet_path = model_path("checkpoints", unet_checkpoint, "unet_checkpoint")
        motion_path = model_path(MOTION_FOLDER, motion_module, "motion_module")
        options = {"dtype": DTYPES[weight_dtype]} if weight_dtype in DTYPES else {}
        model = comfy.sd.load_checkpoint_guess_config(unet_path, output_vae=False, output_clip=False,
                                                      model_options=options)[0]
        if model is None:
            raise VIDiffError(f"unet_checkpoint: {unet_checkpoint} holds no UNet the host recognises; pick an "
                              "InstructPix2Pix or SD-1.5 checkpoint")
        return io.NodeOutput(apply_motion_module(model, motion_path, motion_module, beta_schedule))
