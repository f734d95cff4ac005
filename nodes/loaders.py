"""Loading a VIDiff model: from the project's checkpoint, or from InstructPix2Pix/SD-1.5 + AnimateDiff."""

from __future__ import annotations

import folder_paths
from comfy_api.latest import io

from ..vidiff_model import VIDiffError, build_vidiff_from_parts, load_vidiff
from ..vidiff_model.config import BETA_SCHEDULE_CHOICES
from .host import MOTION_FOLDER, VIDIFF_FOLDER, HostVIDiff, weight_dtype
from .types import DTYPE_CHOICES, VIDiffModelType

_DTYPE_TOOLTIP = "Weight dtype. auto: what the host picks for its device (fp16/bf16 on a GPU, fp32 on the CPU)."
_SCHEDULE_TOOLTIP = ("Noise schedule the samplers use (betas 0.00085 to 0.012). autoselect: the schedule the model was "
                     "trained with ({auto}). sd15: scaled_linear, SD-1.5 and InstructPix2Pix's (ComfyUI's \"linear\"). "
                     "animatediff: linear, what the AnimateDiff motion modules were trained with (ComfyUI's and "
                     "AnimateDiff-Evolved's \"sqrt_linear\").")


def _schedule_input(auto: str) -> io.Combo.Input:
    return io.Combo.Input("beta_schedule", options=list(BETA_SCHEDULE_CHOICES), default="autoselect", optional=True,
                          tooltip=_SCHEDULE_TOOLTIP.format(auto=auto))


class VIDiffModelLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VIDiffModelLoader",
            display_name="Load VIDiff Model",
            category="VIDiff/loaders",
            description="Loads a VIDiff checkpoint (one .safetensors: video UNet, image-instruction MLP, config) "
                        "from models/vidiff.",
            inputs=[
                io.Combo.Input("model_name", options=folder_paths.get_filename_list(VIDIFF_FOLDER),
                               tooltip="A VIDiff checkpoint in models/vidiff (made by training or by "
                                       "`python -m vidiff_model build`)."),
                io.Combo.Input("weight_dtype", options=DTYPE_CHOICES, default="auto", tooltip=_DTYPE_TOOLTIP),
                _schedule_input("the one recorded in the file"),
            ],
            outputs=[VIDiffModelType.Output(display_name="vidiff_model", tooltip="The loaded VIDiff model.")],
        )

    @classmethod
    def execute(cls, model_name, weight_dtype, beta_schedule="autoselect") -> io.NodeOutput:
        path = model_path(VIDIFF_FOLDER, model_name, "model_name")
        model = load_vidiff(path, dtype=_dtype(weight_dtype), beta_schedule=beta_schedule)
        return io.NodeOutput(HostVIDiff(model, model_name))


class VIDiffModelFromParts(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VIDiffModelFromParts",
            display_name="VIDiff Model From Parts",
            category="VIDiff/loaders",
            description="Builds a VIDiff model from an InstructPix2Pix (or SD-1.5) single-file checkpoint and an "
                        "AnimateDiff SD-1.5 motion module (v1, v2 or v3). Text instructions only (no image MLP). "
                        "Norms and noise schedule follow the original AnimateDiff for the module's version.",
            inputs=[
                io.Combo.Input("unet_checkpoint", options=folder_paths.get_filename_list("checkpoints"),
                               tooltip="InstructPix2Pix (8-channel) or SD-1.5 (4-channel, inflated with zeros) "
                                       "single-file checkpoint from models/checkpoints."),
                io.Combo.Input("motion_module", options=folder_paths.get_filename_list(MOTION_FOLDER),
                               tooltip="AnimateDiff SD-1.5 motion module from models/animatediff_models."),
                io.Combo.Input("weight_dtype", options=DTYPE_CHOICES, default="auto", tooltip=_DTYPE_TOOLTIP),
                _schedule_input("the motion module's, animatediff"),
            ],
            outputs=[VIDiffModelType.Output(display_name="vidiff_model", tooltip="The assembled VIDiff model.")],
        )

    @classmethod
    def execute(cls, unet_checkpoint, motion_module, weight_dtype, beta_schedule="autoselect") -> io.NodeOutput:
        unet_path = model_path("checkpoints", unet_checkpoint, "unet_checkpoint")
        motion_path = model_path(MOTION_FOLDER, motion_module, "motion_module")
        model, _ = build_vidiff_from_parts(unet_path, motion_path, dtype=_dtype(weight_dtype),
                                           beta_schedule=beta_schedule)
        return io.NodeOutput(HostVIDiff(model, f"{unet_checkpoint} + {motion_module}"))


def model_path(folder: str, name: str, input_name: str) -> str:
    """Full path of a model file, or an error naming the input and the folder searched."""
    path = folder_paths.get_full_path(folder, name)
    if path is None:
        raise VIDiffError(f"{input_name}: {name} is not in models/{folder} "
                                    f"({', '.join(folder_paths.get_folder_paths(folder))}); put the file there "
                                    "and refresh, or pick one from the list")
    return path


def _dtype(choice):
    """The dtype as a function of the parameter count (what the host's `auto` needs), so the loaders
    convert while reading, tensor by tensor."""
    return lambda parameters: weight_dtype(choice, parameters)
