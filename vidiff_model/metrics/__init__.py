"""The paper's metrics: distortion (PSNR, SSIM), colour (Colorfulness, CDC), temporal (warping error,
seams) and, with local weights, CLIP scores. Frames are (F, H, W, 3) floats in [0, 1]."""

from __future__ import annotations

import torch

from ..errors import VIDiffError
from .color import cdc, colorfulness_per_frame
from .distortion import mean_finite, psnr_per_frame, ssim_per_frame
from .learned import UNAVAILABLE_FID, UNAVAILABLE_LPIPS, CLIPScorer, FIDScorer, LPIPSScorer
from .temporal import warping_errors

__all__ = ["CLIPScorer", "FIDScorer", "LPIPSScorer", "cdc", "colorfulness_per_frame", "evaluate_video", "psnr_per_frame", "ssim_per_frame",
           "warping_errors"]


def check_pair(pred: torch.Tensor, ref: torch.Tensor) -> None:
    """Raise VIDiffError unless prediction and reference have the same frames and size."""
    for name, v in (("prediction", pred), ("reference", ref)):
        if v.ndim != 4 or v.shape[-1] != 3 or v.shape[0] < 1:
            raise VIDiffError(f"{name}: expected RGB frames (frames, height, width, 3), got {tuple(v.shape)}")
    if pred.shape[0] != ref.shape[0]:
        raise VIDiffError(f"reference: {ref.shape[0]} frames but the prediction has {pred.shape[0]}; "
                          "compare videos of the same length")
    if pred.shape[1:3] != ref.shape[1:3]:
        raise VIDiffError(f"reference: frames are {ref.shape[2]}x{ref.shape[1]} but the prediction's are "
                          f"{pred.shape[2]}x{pred.shape[1]}; resize one to the other first")


def evaluate_video(pred: torch.Tensor, ref: torch.Tensor | None = None, *, clip: CLIPScorer | None = None,
                   text: str | None = None, flow: bool = True, lpips: LPIPSScorer | None = None,
                   fid: FIDScorer | None = None) -> dict[str, float | str]:
    """All metrics that apply: reference metrics when `ref` is given, CLIP scores when `clip` is given.

    Args:
        pred: the video to judge; ref: the ground truth (same frames and size) or None.
        clip: a CLIPScorer on local weights; text: the instruction, for text alignment.
        flow: also compute the warping error (needs OpenCV).
        lpips, fid: scorers on local weights (with a reference); without them these are "unavailable".
    """
    if pred.ndim != 4 or pred.shape[-1] != 3 or pred.shape[0] < 1:
        raise VIDiffError(f"prediction: expected RGB frames (frames, height, width, 3), got {tuple(pred.shape)}")
    out: dict[str, float | str] = {"frames": float(pred.shape[0])}
    if ref is not None:
        check_pair(pred, ref)
        out["psnr"] = mean_finite(psnr_per_frame(pred, ref))
        out["ssim"] = float(ssim_per_frame(pred, ref).mean())
        out["lpips"] = float(lpips.per_frame(pred, ref).mean()) if lpips is not None else UNAVAILABLE_LPIPS
        if fid is None:
            out["fid"] = UNAVAILABLE_FID
        elif pred.shape[0] < 2:
            out["fid"] = "unavailable: FID needs at least 2 frames (it compares frame distributions)"
        else:
            out["fid"] = fid.distance(pred, ref)
    out["colorfulness"] = float(colorfulness_per_frame(pred).mean())
    out["cdc"] = cdc(pred)
    if flow and pred.shape[0] > 1:
        errors = torch.tensor(warping_errors(pred), dtype=torch.float64)
        out["warping_error"] = float(errors[torch.isfinite(errors)].mean()) if torch.isfinite(errors).any() else float("nan")
    if clip is not None:
        out.update(clip.scores(pred, text))
    else:
        out["clip_text_alignment"] = out["clip_frame_consistency"] = "unavailable: no local CLIP weights given"
    return out
