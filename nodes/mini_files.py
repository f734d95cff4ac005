"""vidiff-mini out of the box: the pack's own model folders in the host's lists, the generated text
encoder, a loader for the pack's sample clips, one for your own video in their place, and the degradation."""

from __future__ import annotations

import logging
import os

import folder_paths
from comfy_api.latest import io

from ..vidiff_model.errors import VIDiffError
from ..vidiff_model.mini import EXAMPLES_DIR, MINI_TEXT_ENCODER, MODELS_DIR
from ..vidiff_model.mini.footage import APPLY, DEGRADATION_MODES, MINI_SIDE, PASS_THROUGH, SIDE_MULTIPLE, STILL_APPLIED
from ..vidiff_model.mini.footage import degrade_footage, load_footage
from ..vidiff_model.mini.samples import HAZY_SAMPLE_VIDEO, list_sample_clips, load_sample_clip, write_hazy_sample_video
from ..vidiff_model.mini.text_encoder import ensure_clip_l
from .host import VIDIFF_FOLDER

# host folder name -> the pack's folder under models/ (appended after the user's folders, which stay first)
PACK_FOLDERS = {"vae": "vae", "text_encoders": "text_encoders", VIDIFF_FOLDER: "vidiff"}


def register_pack_files() -> None:
    """Add the pack's `models/vae`, `models/text_encoders`, `models/vidiff` to the host's model folders and
    generate the mini text encoder there if it is missing (a few seconds, once). Call after
    `register_model_folders` (which creates the `vidiff` folder kind)."""
    for name, sub in PACK_FOLDERS.items():
        folder_paths.add_model_folder_path(name, str(MODELS_DIR / sub), is_default=False)
    try:
        if not MINI_TEXT_ENCODER.is_file():
            logging.info("VIDiff: generating the vidiff-mini text encoder %s (seeded, ~250 MB)", MINI_TEXT_ENCODER)
        ensure_clip_l(MINI_TEXT_ENCODER)
    except OSError as e:  # e.g. a read-only install: the pack still loads, the mini workflows lack their CLIP
        logging.warning("VIDiff: could not write %s (%s); run `python -m vidiff_model.mini.text_encoder PATH` "
                        "with PATH in a models/text_encoders folder", MINI_TEXT_ENCODER, e)
    provide_sample_video()


def provide_sample_video() -> None:
    """The input of vidiff_mini_long_video_batched: VideoHelperSuite's Load Video lists only ComfyUI's input folder
    and reads container videos, not the shipped animated WebP, so the sample clip, hazed as vidiff_mini_dehaze hazes
    it, is written there once as `vidiff_mini_sample_hazy.mp4` (~130 kB) when missing (a user's file of that name
    is left alone)."""
    target = os.path.join(folder_paths.get_input_directory(), HAZY_SAMPLE_VIDEO)
    if os.path.isfile(target):
        return
    try:
        write_hazy_sample_video(target)
        logging.info("VIDiff: wrote the sample clip for vidiff_mini_long_video_batched to %s", target)
    except Exception as e:  # noqa: BLE001 (a read-only input folder, a missing codec): the pack still loads
        logging.warning("VIDiff: could not write %s (%s); vidiff_mini_long_video_batched needs a video chosen in "
                        "its Load Video node", target, e)


class VIDiffLoadSampleClip(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VIDiffLoadSampleClip",
            display_name="VIDiff Load Sample Clip",
            category="VIDiff/loaders",
            description="Loads one of the short video clips shipped in the pack's sample_clips/ folder as frames, so "
                        "the vidiff-mini workflows run without any file in ComfyUI's input folder.",
            inputs=[
                io.Combo.Input("clip", options=list_sample_clips(),
                               tooltip=f"A clip from the pack's sample_clips folder ({EXAMPLES_DIR})."),
                io.Int.Input("frames", default=0, min=0, max=100000, optional=True,
                             tooltip="Keep only the first this many frames; 0 keeps all."),
            ],
            outputs=[
                io.Image.Output(display_name="images", tooltip="The clip's frames, one image per frame (F, H, W, 3)."),
                io.Float.Output(display_name="fps", tooltip="The clip's frame rate (e.g. for CreateVideo)."),
                io.Int.Output(display_name="frame_count", tooltip="How many frames came out."),
            ],
        )

    @classmethod
    def execute(cls, clip, frames=0) -> io.NodeOutput:
        images, fps = load_sample_clip(clip, frames)  # a VIDiffError (ValueError) names the input
        return io.NodeOutput(images, fps, int(images.shape[0]))


LOAD_VIDEO = "VIDiffLoadVideo"


class VIDiffLoadVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=LOAD_VIDEO,
            display_name="VIDiff Load Video (vidiff-mini)",
            category="VIDiff/loaders",
            description="Your own video in a vidiff-mini template, in place of VIDiff Load Sample Clip (same outputs; "
                        "right-click that node: Swap for VIDiff Load Video). Resizes to the model's frame size, keeps "
                        "the template's frame count, and tells VIDiff Degrade Video to pass your frames through.",
            inputs=[
                io.Combo.Input("video", options=_input_videos(), upload=io.UploadType.video,
                               tooltip="A video in ComfyUI's input folder (mp4, webm, mkv, mov, avi, animated webp or "
                                       "gif); the upload button puts one there."),
                io.Int.Input("frames", default=16, optional=True, min=0, max=100000,
                             tooltip="Keep the first this many frames: the template's clip length (16; vidiff-mini "
                                     "takes up to 32 per clip). 0 keeps all (the long-video template)."),
                io.Int.Input("width", default=MINI_SIDE, optional=True, min=SIDE_MULTIPLE, max=2048,
                             step=SIDE_MULTIPLE,
                             tooltip=f"Frame width for the model (a multiple of {SIDE_MULTIPLE}; vidiff-mini was "
                                     f"trained on {MINI_SIDE}). The largest centred crop of this shape is resized."),
                io.Int.Input("height", default=MINI_SIDE, optional=True, min=SIDE_MULTIPLE, max=2048,
                             step=SIDE_MULTIPLE,
                             tooltip=f"Frame height for the model (a multiple of {SIDE_MULTIPLE}; vidiff-mini was "
                                     f"trained on {MINI_SIDE})."),
                io.Combo.Input("degradation", options=list(DEGRADATION_MODES), default=PASS_THROUGH, optional=True,
                               tooltip="What VIDiff Degrade Video does with these frames (when it takes them straight "
                                       "from this node). pass through: your clip is the input to restore, so no haze "
                                       "or blur is added; grayscale (recolor) and holes (inpaint) still apply, as "
                                       "the task needs them. apply: your clip is degraded as the sample clip is, so "
                                       "the metrics score the restoration against it."),
            ],
            outputs=[
                io.Image.Output(display_name="images", tooltip="Your video's frames at the model's size (F, H, W, 3)."),
                io.Float.Output(display_name="fps", tooltip="The video's frame rate (e.g. for the saves)."),
                io.Int.Output(display_name="frame_count", tooltip="How many frames came out."),
            ],
        )

    @classmethod
    def execute(cls, video, frames=16, width=MINI_SIDE, height=MINI_SIDE, degradation=PASS_THROUGH) -> io.NodeOutput:
        images, fps = load_footage(_input_path(video), frames, width, height)  # a VIDiffError names the input
        return io.NodeOutput(images, fps, int(images.shape[0]))

    @classmethod
    def fingerprint_inputs(cls, video, **_):
        path = folder_paths.get_annotated_filepath(video)
        return os.path.getmtime(path) if os.path.isfile(path) else video  # a replaced file is read again

    @classmethod
    def validate_inputs(cls, video):  # only `video`: the host still checks the other inputs' ranges and choices
        if not folder_paths.exists_annotated_filepath(video):
            return (f"video: {video!r} is not in ComfyUI's input folder ({folder_paths.get_input_directory()}); "
                    "upload a video with the node's upload button or copy it there")
        return True


def _input_videos() -> list[str]:
    return list_sample_clips(folder_paths.get_input_directory())


def _input_path(video: str) -> str:
    path = folder_paths.get_annotated_filepath(video)
    if not os.path.isfile(path):
        raise VIDiffError(f"video: {video!r} is not in ComfyUI's input folder ({folder_paths.get_input_directory()})")
    return path


def own_footage_mode(prompt: dict | None, node_id: str | None) -> str | None:
    """The `degradation` setting of the VIDiff Load Video node whose images feed node `node_id`'s `images`
    directly, read from the queued prompt; None when the images come from anything else."""
    node = (prompt or {}).get(str(node_id), {})
    link = node.get("inputs", {}).get("images")
    if not isinstance(link, list) or len(link) != 2:
        return None
    source = prompt.get(str(link[0]), {})
    if source.get("class_type") != LOAD_VIDEO or link[1] != 0:
        return None
    mode = source.get("inputs", {}).get("degradation", PASS_THROUGH)
    return mode if isinstance(mode, str) else PASS_THROUGH  # a linked setting: the node's default


DEGRADATIONS = {"grayscale": "recolor", "haze": "dehaze", "blur": "deblur", "holes": "inpaint"}


class VIDiffDegradeVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VIDiffDegradeVideo",
            display_name="VIDiff Degrade Video",
            category="VIDiff/tasks",
            description="Degrades clean frames the way vidiff-mini was trained (grayscale, synthetic haze, motion or "
                        "defocus blur, drifting holes), to try a restoration and score it against the clean frames. "
                        "Frames straight from VIDiff Load Video (vidiff-mini) follow its degradation setting: with "
                        "'pass through', haze and blur are not added to your own clip.",
            inputs=[
                io.Image.Input("images", tooltip="Clean video frames (from VIDiff Load Video: your clip, see its "
                                                 "degradation setting)."),
                io.Combo.Input("degradation", options=list(DEGRADATIONS), default="haze",
                               tooltip="grayscale (for recolor), haze (dehaze), blur (deblur), holes (inpaint)."),
                io.Int.Input("seed", default=0, min=0, max=2**31 - 1,
                             tooltip="Draws the haze depth and density, the blur kernel or the holes."),
            ],
            outputs=[
                io.Image.Output(display_name="images", tooltip="The degraded frames (or your clip, passed through)."),
                io.Mask.Output(display_name="mask", tooltip="The holes per frame (1 = missing); zeros for the other "
                                                            "degradations."),
            ],
            hidden=[io.Hidden.prompt, io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, images, degradation, seed) -> io.NodeOutput:
        task = DEGRADATIONS[degradation]
        mode = own_footage_mode(cls.hidden.prompt, cls.hidden.unique_id)
        if mode is None:
            return io.NodeOutput(*degrade_footage(images, task, seed, APPLY))
        if mode == PASS_THROUGH and task not in STILL_APPLIED:
            logging.info("VIDiff Degrade Video %s: your clip passes through (VIDiff Load Video: degradation %s)",
                         cls.hidden.unique_id, mode)
        return io.NodeOutput(*degrade_footage(images, task, seed, mode))
