"""Helper nodes for task inputs and outputs the host has no node for."""

from __future__ import annotations

import os
from functools import lru_cache

import folder_paths
from comfy_api.latest import io, ui

from ..vidiff_model.errors import VIDiffError
from ..vidiff_model.evaluate import format_table
from ..vidiff_model.metrics import FIDScorer, LPIPSScorer, evaluate_video
from ..vidiff_model.video_ops import (
    COLORS, HOLE_FILLS, cut_holes, keep_luminance, mask_from_marked, transfer_detail,
)
from .host import METRICS_FOLDER

NONE = "none"


class VIDiffCutHoles(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VIDiffCutHoles",
            display_name="VIDiff Cut Holes",
            category="VIDiff/tasks",
            description="Makes the inpainting input: the masked pixels of every frame replaced by a flat colour.",
            inputs=[
                io.Image.Input("images", tooltip="Video frames."),
                io.Mask.Input("mask", tooltip="1 where pixels are missing: one mask for all frames, or one per frame."),
                io.Combo.Input("fill", options=list(HOLE_FILLS), default="black", tooltip="Colour of the holes."),
            ],
            outputs=[io.Image.Output(display_name="images", tooltip="Frames with holes.")],
        )

    @classmethod
    def execute(cls, images, mask, fill) -> io.NodeOutput:
        return io.NodeOutput(cut_holes(images, mask, fill))


class VIDiffMaskFromSegmentation(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VIDiffMaskFromSegmentation",
            display_name="VIDiff Mask From Segmentation",
            category="VIDiff/tasks",
            description="Turns a language-guided segmentation result (the object painted semi-transparently in a "
                        "colour) into a MASK per frame.",
            inputs=[
                io.Image.Input("source", tooltip="The source frames."),
                io.Image.Input("result", tooltip="The decoded segmentation result of those frames."),
                io.Combo.Input("color", options=list(COLORS), default="red",
                               tooltip="The colour named in the instruction."),
                io.Float.Input("threshold", default=0.25, min=0.0, max=1.0, step=0.01,
                               tooltip="Minimum paint strength counted as the object."),
            ],
            outputs=[io.Mask.Output(display_name="mask", tooltip="1 on the object, per frame.")],
        )

    @classmethod
    def execute(cls, source, result, color, threshold) -> io.NodeOutput:
        return io.NodeOutput(mask_from_marked(source, result, color, threshold))


class VIDiffDetailTransfer(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VIDiffDetailTransfer",
            display_name="VIDiff Detail Transfer",
            category="VIDiff/tasks",
            description="Gives a restored video back the fine detail the autoencoder lost: result + strength × "
                        "(source − VAEDecode(VAEEncode(source))). A small autoencoder such as vidiff-mini's blurs "
                        "everything it decodes; what it dropped from the source is known exactly. For restorations that "
                        "keep the source's detail (dehaze, deblur); recolouring has VIDiff Keep Luminance; not for "
                        "style edits, which change the detail on purpose.",
            inputs=[
                io.Image.Input("source", tooltip="The frames the model was given (before VAEEncode)."),
                io.Image.Input("result", tooltip="VAEDecode of the model's result for those frames."),
                io.Image.Input("source_round_trip",
                               tooltip="VAEDecode of the source's VAEEncode (the same latent the sampler got), "
                                       "with the same VAE."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Holes the model fills (1 = missing), e.g. VIDiff Degrade Video's mask: no "
                                      "detail is taken from the source there, so the hole edges do not come back."),
                io.Float.Input("strength", default=1.0, min=0.0, max=2.0, step=0.05,
                               tooltip="1 adds back exactly what the autoencoder lost; 0 returns the result as it is."),
                io.Int.Input("mask_grow", default=4, min=0, max=64,
                             tooltip="Pixels around the mask that take no detail either (the autoencoder smears a "
                                     "hole's edge over a few pixels)."),
            ],
            outputs=[io.Image.Output(display_name="images", tooltip="The result with the source's detail.")],
        )

    @classmethod
    def execute(cls, source, result, source_round_trip, strength, mask_grow, mask=None) -> io.NodeOutput:
        return io.NodeOutput(transfer_detail(source, result, source_round_trip, mask, strength, mask_grow))


class VIDiffKeepLuminance(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VIDiffKeepLuminance",
            display_name="VIDiff Keep Luminance",
            category="VIDiff/tasks",
            description="For recolouring a gray video: the result's colour on the source's brightness (BT.601 luma), "
                        "as colourisation pipelines finish their output. The gray source holds the brightness "
                        "exactly and at full sharpness; the model supplies the colour.",
            inputs=[
                io.Image.Input("source", tooltip="The gray frames the model was given (before VAEEncode)."),
                io.Image.Input("result", tooltip="VAEDecode of the model's result for those frames."),
            ],
            outputs=[io.Image.Output(display_name="images", tooltip="The result's colour, the source's luma.")],
        )

    @classmethod
    def execute(cls, source, result) -> io.NodeOutput:
        return io.NodeOutput(keep_luminance(source, result))


class VIDiffVideoMetrics(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VIDiffVideoMetrics",
            display_name="VIDiff Video Metrics",
            category="VIDiff/evaluation",
            description="The paper's metrics for a video: PSNR and SSIM against a reference, Colorfulness, CDC and "
                        "the optical-flow warping error; LPIPS and FID when their weights are in models/vidiff_metrics. "
                        "Shown on the node and output as text.",
            inputs=[
                io.Image.Input("prediction", tooltip="The frames to judge (e.g. VAEDecode of VIDiffSampler)."),
                io.Image.Input("reference", optional=True,
                               tooltip="Optional ground-truth frames (same count and size) for PSNR and SSIM."),
                io.Boolean.Input("warping_error", default=True,
                                 tooltip="Also compute the optical-flow warping error (slower on long videos)."),
                io.Combo.Input("lpips_alexnet", options=_weights(), default=NONE, optional=True,
                               tooltip="LPIPS backbone: torchvision's AlexNet weights (alexnet-owt-7be5be79.pth) in "
                                       "models/vidiff_metrics. 'none' reports LPIPS as unavailable."),
                io.Combo.Input("lpips_heads", options=_weights(), default=NONE, optional=True,
                               tooltip="LPIPS v0.1 linear heads (alex.pth, from the lpips package) in "
                                       "models/vidiff_metrics; needed with lpips_alexnet."),
                io.Combo.Input("fid_inception", options=_weights(), default=NONE, optional=True,
                               tooltip="FID backbone: torchvision's Inception-v3 weights (inception_v3_google-0cc3c7bd.pth) "
                                       "in models/vidiff_metrics. Compares the prediction's frames with the reference's."),
            ],
            outputs=[io.String.Output(display_name="metrics", tooltip="The figures, one 'name value' per line.")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, prediction, warping_error, reference=None, lpips_alexnet=NONE, lpips_heads=NONE,
                fid_inception=NONE) -> io.NodeOutput:
        if (lpips_alexnet == NONE) != (lpips_heads == NONE):
            missing = "lpips_heads" if lpips_heads == NONE else "lpips_alexnet"
            raise VIDiffError(f"{missing}: LPIPS needs both lpips_alexnet and lpips_heads; choose the other file "
                              "or set both to none")
        lpips = _lpips(*_path(lpips_alexnet), *_path(lpips_heads)) if lpips_alexnet != NONE else None
        fid = _fid(*_path(fid_inception)) if fid_inception != NONE else None
        text = format_table(evaluate_video(prediction, reference, flow=warping_error, lpips=lpips, fid=fid))
        return io.NodeOutput(text, ui=ui.PreviewText(text))


def _weights() -> list[str]:
    return [NONE] + folder_paths.get_filename_list(METRICS_FOLDER)


def _path(name: str) -> tuple[str, float]:
    """The file's path and modification time (the cache key: a replaced file is loaded again)."""
    path = folder_paths.get_full_path(METRICS_FOLDER, name)
    if path is None:
        raise VIDiffError(f"{name}: not found in models/{METRICS_FOLDER}")
    return path, os.path.getmtime(path)


@lru_cache(maxsize=2)  # a backbone loads once per server, not once per run
def _lpips(alexnet: str, _alexnet_mtime: float, heads: str, _heads_mtime: float) -> LPIPSScorer:
    return LPIPSScorer(alexnet, heads)


@lru_cache(maxsize=2)
def _fid(inception: str, _mtime: float) -> FIDScorer:
    return FIDScorer(inception)
