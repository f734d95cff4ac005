"""vidiff-mini out of the box: the pack's own model folders in the host's lists, the generated text
encoder, and a loader for the pack's sample clips."""

from __future__ import annotations

import logging

import folder_paths
from comfy_api.latest import io

from ..vidiff_model.mini import EXAMPLES_DIR, MINI_TEXT_ENCODER, MODELS_DIR
from ..vidiff_model.mini.samples import list_sample_clips, load_sample_clip
from ..vidiff_model.mini.tasks import degrade_frames
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


DEGRADATIONS = {"grayscale": "recolor", "haze": "dehaze", "blur": "deblur", "holes": "inpaint"}


class VIDiffDegradeVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VIDiffDegradeVideo",
            display_name="VIDiff Degrade Video",
            category="VIDiff/tasks",
            description="Degrades clean frames the way vidiff-mini was trained (grayscale, synthetic haze, motion or "
                        "defocus blur, drifting holes), to try a restoration and score it against the clean frames.",
            inputs=[
                io.Image.Input("images", tooltip="Clean video frames."),
                io.Combo.Input("degradation", options=list(DEGRADATIONS), default="haze",
                               tooltip="grayscale (for recolor), haze (dehaze), blur (deblur), holes (inpaint)."),
                io.Int.Input("seed", default=0, min=0, max=2**31 - 1,
                             tooltip="Draws the haze depth and density, the blur kernel or the holes."),
            ],
            outputs=[
                io.Image.Output(display_name="images", tooltip="The degraded frames."),
                io.Mask.Output(display_name="mask", tooltip="The holes per frame (1 = missing); zeros for the other "
                                                            "degradations."),
            ],
        )

    @classmethod
    def execute(cls, images, degradation, seed) -> io.NodeOutput:
        degraded, mask = degrade_frames(images, DEGRADATIONS[degradation], seed)
        return io.NodeOutput(degraded, mask)
