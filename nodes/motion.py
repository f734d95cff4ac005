"""VIDiff on the host's MODEL: temporal layers added to any SD-1.5-family MODEL, and dual guidance as a GUIDER."""

from __future__ import annotations

import folder_paths
from comfy_api.latest import io

from ..vidiff_model.checkpoints.motion_module import read_motion_module
from ..vidiff_model.checkpoints.from_parts import MOTION_BETA_SCHEDULE, SPATIAL_NORM
from ..vidiff_model.config import BETA_SCHEDULE_CHOICES, VideoUNetConfig, VIDiffConfig
from ..vidiff_model.guidance import GuidanceConfig
from .host import MOTION_FOLDER, SCHEDULE_TOOLTIP, latent_to_video, model_path
from .host_guider import VIDiffDualGuider, VIDiffNoise, check_video_model
from .host_sampling import HostVideoModel
from .instruction import instruction_pair
from .model_injection import VIDiffAttachment, add_temporal_layers, group_modules

def apply_motion_module(model, path: str, name: str, beta_schedule: str = "autoselect"):
    """A clone of the host MODEL with the motion module's temporal layers, norms and schedule (original
    AnimateDiff semantics: v1's spatial norms over the clip, per frame for v2/v3; 8 temporal heads)."""
    tensors, version, max_len, has_mid = read_motion_module(path, any_size=True)
    schedule = MOTION_BETA_SCHEDULE if beta_schedule == "autoselect" else beta_schedule
    # What VIDiff needs to know of the model; the UNet's own size fields are not used (the host's UNet is).
    unet = VideoUNetConfig(motion_max_seq_length=max_len, use_motion_mid_block=has_mid,
                           temporal_norm="per_frame", spatial_norm=SPATIAL_NORM[version])
    attachment = VIDiffAttachment(name=name, version=version, config=VIDiffConfig(unet=unet, beta_schedule=schedule))
    return add_temporal_layers(model, group_modules(tensors, path), attachment, path=path)


class VIDiffApplyMotionModule(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VIDiffApplyMotionModule",
            display_name="VIDiff Apply Motion Module",
            category="VIDiff/loaders",
            description="Adds an AnimateDiff SD-1.5 motion module's temporal layers (v1, v2 or v3, with the original "
                        "norms and noise schedule) to an InstructPix2Pix or SD-1.5 MODEL. LoRAs, IP-Adapter, FreeU and "
                        "other model patches applied before or after it keep working; the input MODEL is not changed.",
            inputs=[
                io.Model.Input("model", tooltip="An InstructPix2Pix (for VIDiff) or SD-1.5 MODEL, from Load Checkpoint, "
                                                "with or without LoRAs."),
                io.Combo.Input("motion_module", options=folder_paths.get_filename_list(MOTION_FOLDER),
                               tooltip="AnimateDiff SD-1.5 motion module from models/animatediff_models."),
                io.Combo.Input("beta_schedule", options=list(BETA_SCHEDULE_CHOICES), default="autoselect",
                               optional=True, tooltip=SCHEDULE_TOOLTIP.format(auto="the motion module's, animatediff")),
            ],
            outputs=[io.Model.Output(display_name="model", tooltip="The MODEL with temporal layers: frames are the "
                                                                   "latent's batch.")],
        )

    @classmethod
    def execute(cls, model, motion_module, beta_schedule="autoselect") -> io.NodeOutput:
        path = model_path(MOTION_FOLDER, motion_module, "motion_module")
        return io.NodeOutput(apply_motion_module(model, path, motion_module, beta_schedule))


class VIDiffGuider(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VIDiffGuider",
            display_name="VIDiff Guider",
            category="VIDiff/sampling",
            description="VIDiff's dual classifier-free guidance (video and text) for one clip, as a GUIDER for "
                        "SamplerCustomAdvanced with any NOISE, SAMPLER and SIGMAS. Long videos: VIDiff Sampler.",
            inputs=[
                io.Model.Input("model", tooltip="A MODEL with temporal layers (VIDiff Apply Motion Module)."),
                io.Conditioning.Input("instruction", tooltip="From VIDiff Instruction Encode or CLIP Text Encode."),
                io.Latent.Input("source", tooltip="The source video from VAEEncode (frames are the batch); connect "
                                                  "the same LATENT to SamplerCustomAdvanced's latent_image."),
                io.Float.Input("video_cfg", default=1.5, min=0.0, max=100.0, step=0.05, round=0.01,
                               tooltip="s_V: how closely the result follows the source video (1.0 skips one branch)."),
                io.Float.Input("text_cfg", default=7.5, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="s_T: how strongly the instruction is applied."),
                io.Conditioning.Input("negative", optional=True,
                                      tooltip="Optional negative instruction in place of the empty one (∅_T)."),
            ],
            outputs=[io.Guider.Output(display_name="guider", tooltip="For SamplerCustomAdvanced.")],
        )

    @classmethod
    def execute(cls, model, instruction, source, video_cfg, text_cfg, negative=None) -> io.NodeOutput:
        frames = latent_to_video(source)[0].transpose(0, 1)  # checks the LATENT; (F, 4, h, w)
        check_video_model(model, frames.shape[0])
        tokens, null, _ = instruction_pair(HostVideoModel(model), instruction, negative)
        return io.NodeOutput(VIDiffDualGuider(model, tokens, null, frames, GuidanceConfig(video_cfg, text_cfg)))


class VIDiffNoiseNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VIDiffNoise",
            display_name="VIDiff Noise",
            category="VIDiff/sampling",
            description="Noise drawn as VIDiff Sampler draws it (one seeded video tensor), so VIDiff Guider with "
                        "SamplerCustomAdvanced gives the same video as VIDiff Sampler for the same seed.",
            inputs=[io.Int.Input("noise_seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                                 tooltip="The same seed and settings give the same video.")],
            outputs=[io.Noise.Output(display_name="noise", tooltip="For SamplerCustomAdvanced.")],
        )

    @classmethod
    def execute(cls, noise_seed) -> io.NodeOutput:
        return io.NodeOutput(VIDiffNoise(noise_seed))
