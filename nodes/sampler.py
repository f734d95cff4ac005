"""The sampler node and the long-video settings node."""

from __future__ import annotations

from comfy_api.latest import io

from ..vidiff_model import GuidanceConfig, LongVideoOptions, translate_video
from ..vidiff_model.long_video import MODES, WEIGHTINGS
from .host import SAMPLER_NAMES, SCHEDULER_NAMES, Progress, interrupt_check, latent_to_video, video_to_latent
from .host_guider import check_video_model
from .host_sampling import HostClipSampler, HostVideoModel
from .instruction import continuation_fn, instruction_pair
from .types import ContinuationType, LongVideoType, MetaBatchType
from .video_parts import Continuation, check_wiring, sample_in_parts


class VIDiffSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VIDiffSampler",
            display_name="VIDiff Sampler",
            category="VIDiff/sampling",
            description="Translates the source video following the instruction, with dual classifier-free guidance "
                        "(video and text) and the host's samplers. Long videos go clip by clip (VIDiffLongVideo).",
            inputs=[
                io.Model.Input("model", tooltip="A MODEL with VIDiff's temporal layers: Load VIDiff Model, or Load "
                                                "Checkpoint (InstructPix2Pix) → VIDiff Apply Motion Module; LoRAs and "
                                                "model patches before or after apply."),
                io.Conditioning.Input("instruction", tooltip="From VIDiffInstructionEncode."),
                io.Latent.Input("source", tooltip="The source video from VAEEncode with the SD-1.5 VAE "
                                                  "(frames are the batch)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Noise seed: the same seed and settings give the same video."),
                io.Int.Input("steps", default=20, min=1, max=1000, tooltip="Denoising steps per clip."),
                io.Float.Input("video_cfg", default=1.5, min=0.0, max=100.0, step=0.05, round=0.01,
                               tooltip="s_V: how closely the result follows the source video (1.0 skips one branch)."),
                io.Float.Input("text_cfg", default=7.5, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="s_T: how strongly the instruction is applied."),
                io.Combo.Input("sampler_name", options=SAMPLER_NAMES, default="euler",
                               tooltip="The host's sampler."),
                io.Combo.Input("scheduler", options=SCHEDULER_NAMES, default="normal",
                               tooltip="The host's noise schedule."),
                io.Conditioning.Input("negative", optional=True,
                                      tooltip="Optional negative instruction in place of the empty one (∅_T)."),
                LongVideoType.Input("long_video", optional=True,
                                    tooltip="Clip settings from VIDiffLongVideo; without them the whole video is "
                                            "one clip (at most the motion module's frame limit)."),
                MetaBatchType.Input("meta_batch", optional=True,
                                    tooltip="VideoHelperSuite's Meta Batch Manager, the same one the Load Video node "
                                            "takes: the video comes frames_per_batch at a time and each batch "
                                            "continues from the one before (long_video needed: autoregressive or "
                                            "overlap_guided)."),
                ContinuationType.Input("continue_from", optional=True,
                                       tooltip="From VIDiff Continue From: the source's first frames are already "
                                               "translated (a long video sent in segments)."),
            ],
            outputs=[io.Latent.Output(display_name="latent",
                                      tooltip="The translated video: same frames and size as the source.")],
            hidden=[io.Hidden.unique_id, io.Hidden.prompt],
        )

    @classmethod
    def execute(cls, model, instruction, source, seed, steps, video_cfg, text_cfg, sampler_name, scheduler,
                negative=None, long_video=None, meta_batch=None, continue_from=None) -> io.NodeOutput:
        return io.NodeOutput(sample_video(model, instruction, source, seed, steps, video_cfg, text_cfg, sampler_name,
                                          scheduler, negative, long_video, cls.hidden.unique_id, meta_batch,
                                          continue_from, cls.hidden.prompt))


def sample_video(model, instruction, source, seed, steps, video_cfg, text_cfg, sampler_name, scheduler,
                 negative=None, long_video=None, node_id=None, meta_batch=None, continue_from=None,
                 prompt=None) -> dict:
    """VIDiff Sampler's work: the library's translation (clips, seams, continuation, VIDiff's noise) on the host's
    MODEL, its samplers and its conditioning, on the whole video or on one part of it (a meta batch, a segment).
    Returns the translated LATENT."""
    video = latent_to_video(source)  # (1, 4, F, H, W), before loading anything
    check_wiring(prompt, node_id, meta_batch, long_video, continue_from)
    check_video_model(model)
    video_model = HostVideoModel(model)
    tokens, null, payload = instruction_pair(video_model, instruction, negative)

    def translate(part, carry):
        result = translate_video(
            video_model, part, tokens, null, seed=seed,
            sampler=HostClipSampler(video_model, sampler_name, scheduler, steps, seed),
            guidance=GuidanceConfig(video_cfg, text_cfg), long_video=long_video,
            continuation=continuation_fn(video_model, payload),
            callback=Progress(steps, node_id, model.load_device), interrupt=interrupt_check, continue_from=carry)
        return result.latent, result.carry

    return video_to_latent(sample_in_parts(video, translate, meta_batch=meta_batch, continuation=continue_from,
                                           prompt=prompt, node_id=node_id))


class VIDiffLongVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VIDiffLongVideo",
            display_name="VIDiff Long Video",
            category="VIDiff/sampling",
            description="How videos longer than one clip are translated: clips of clip_length frames, each sharing "
                        "overlap frames with the previous one.",
            inputs=[
                io.Int.Input("clip_length", default=16, min=1, max=128,
                             tooltip="Frames per clip (16 is what the motion modules were trained on)."),
                io.Int.Input("overlap", default=4, min=0, max=127,
                             tooltip="Frames each clip shares with the previous clip; less than clip_length."),
                io.Combo.Input("mode", options=list(MODES), default="autoregressive",
                               tooltip="autoregressive: the paper's method, continues from the previous clip's "
                                       "frames (models trained for it). overlap_guided: training-free, holds the "
                                       "shared frames during sampling (InstructPix2Pix + AnimateDiff). "
                                       "sliding_window: windows denoised and blended at every step."),
                io.Combo.Input("weighting", options=list(WEIGHTINGS), default="pyramid",
                               tooltip="sliding_window only: how overlapping windows are blended."),
            ],
            outputs=[LongVideoType.Output(display_name="long_video", tooltip="Settings for VIDiffSampler.")],
        )

    @classmethod
    def validate_inputs(cls, clip_length, overlap, mode, weighting):
        if overlap >= clip_length:
            return (f"overlap: {overlap} frames is not less than clip_length ({clip_length}); "
                    f"use an overlap of at most {clip_length - 1}")
        return True

    @classmethod
    def execute(cls, clip_length, overlap, mode, weighting) -> io.NodeOutput:
        return io.NodeOutput(LongVideoOptions(clip_length, overlap, mode, weighting))


class VIDiffContinueFrom(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VIDiffContinueFrom",
            display_name="VIDiff Continue From",
            category="VIDiff/sampling",
            description="A long video sent in segments (the client does this): the sampler's source starts with "
                        "frames already translated by the previous segment, and continues from them.",
            inputs=[
                io.Int.Input("frames", default=0, min=0, max=1024,
                             tooltip="How many first frames of the source are already translated: the last frames "
                                     "of previous (up to clip_length − 1). 0 starts a video in segments."),
                io.Int.Input("first_frame", default=0, min=0, max=0x7FFFFFFF,
                             tooltip="Where the source's first frame is in the whole video: the noise is drawn per "
                                     "frame, so segments get the same noise as one run."),
                io.Latent.Input("previous", optional=True,
                                tooltip="The previous segment's translated latent (its last frames are used)."),
            ],
            outputs=[ContinuationType.Output(display_name="continue_from", tooltip="For VIDiff Sampler.")],
        )

    @classmethod
    def execute(cls, frames, first_frame, previous=None) -> io.NodeOutput:
        return io.NodeOutput(Continuation(frames, first_frame, previous))
