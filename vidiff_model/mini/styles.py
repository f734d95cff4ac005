"""Text style edits whose target a classical filter defines, so the instruction alone decides the output.

| style      | target (per frame, deterministic, no RNG)                                                  |
|------------|---------------------------------------------------------------------------------------------|
| sketch     | OpenCV `pencilSketch` (σs 60, σr 0.07, shade 0.05), gray copied to three channels           |
| watercolor | OpenCV `stylization` (σs 60, σr 0.45): flattened colours with dark edges                    |
| sepia      | the standard sepia matrix (R' = .393R + .769G + .189B, ...), clipped to [0, 1]              |
| cartoon    | two bilateral passes, colours quantised to 6 levels per channel, black Canny outlines       |

The OpenCV filters work on 8-bit frames (inputs are rounded to 0–255 first). `pencilSketch`'s domain
transform leaves streaks on small frames, so frames whose short side is under 256 px are sketched at an
integer upscale (×2 at 128 px, ×4 at 64 px) and averaged back down; every other filter runs at the frame's
own size. Frames are (F, H, W, 3) floats in [0, 1], torch or numpy; the result has the input's type.

Training and evaluation use `style_target(frames, name)` and `STYLES[name].templates` (the phrasings,
defined in `training.templates.STYLE_TEMPLATES`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from ..training.templates import STYLE_TEMPLATES

WORKING_SIDE = 256  # pencilSketch works at no less than this short side (see the module docstring)
SEPIA = np.array([[0.393, 0.769, 0.189],
                  [0.349, 0.686, 0.168],
                  [0.272, 0.534, 0.131]], dtype=np.float32)  # rows: output R, G, B


# -- frame conversions (shared with baselines.py) -----------------------------------------------------------
def frames_numpy(frames) -> np.ndarray:
    """(F, H, W, 3) torch or numpy in [0, 1] (or numpy uint8) -> float32 numpy in [0, 1]."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().float().numpy()
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames: expected RGB frames (frames, height, width, 3), got {tuple(frames.shape)}")
    if frames.dtype == np.uint8:
        return frames.astype(np.float32) / 255
    return np.clip(frames.astype(np.float32), 0, 1)


def frames_like(result: np.ndarray, reference):
    """float32 [0, 1] numpy `result` in the type of `reference` (torch: same dtype and device)."""
    if isinstance(reference, torch.Tensor):
        return torch.from_numpy(np.ascontiguousarray(result)).to(device=reference.device, dtype=reference.dtype)
    if np.asarray(reference).dtype == np.uint8:
        return (np.clip(result, 0, 1) * 255).round().astype(np.uint8)
    return result.astype(np.float32)


def to_uint8(frame: np.ndarray) -> np.ndarray:
    return (np.clip(frame, 0, 1) * 255).round().astype(np.uint8)


# -- the filters: one RGB frame (H, W, 3) float32 [0, 1] -> the same ------------------------------------------
def sketch_frame(frame: np.ndarray) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    up = -(-WORKING_SIDE // min(h, w))  # ceil: 1 from 256 px up
    x = to_uint8(frame)[..., ::-1]  # BGR, as OpenCV's photo module expects (only the gray output is used)
    if up > 1:
        x = cv2.resize(x, (w * up, h * up), interpolation=cv2.INTER_CUBIC)
    gray, _ = cv2.pencilSketch(np.ascontiguousarray(x), sigma_s=60, sigma_r=0.07, shade_factor=0.05)
    if up > 1:
        gray = cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA)
    return np.repeat(gray[..., None], 3, axis=-1).astype(np.float32) / 255


def watercolor_frame(frame: np.ndarray) -> np.ndarray:
    import cv2

    bgr = np.ascontiguousarray(to_uint8(frame)[..., ::-1])
    return cv2.stylization(bgr, sigma_s=60, sigma_r=0.45)[..., ::-1].astype(np.float32) / 255


def sepia_frame(frame: np.ndarray) -> np.ndarray:
    return np.clip(frame @ SEPIA.T, 0, 1).astype(np.float32)


def cartoon_frame(frame: np.ndarray) -> np.ndarray:
    import cv2

    rgb = to_uint8(frame)
    smooth = rgb
    for _ in range(2):  # flatten textures, keep edges
        smooth = cv2.bilateralFilter(smooth, 5, 40, 5)
    flat = (smooth.astype(np.int32) // 43) * 43 + 21  # 6 levels per channel, each at its bin's centre
    gray = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (3, 3), 0)
    edges = cv2.Canny(gray, 80, 160) > 0  # thin black outlines
    flat[edges] = 0
    return np.clip(flat, 0, 255).astype(np.float32) / 255


class Style(NamedTuple):
    fn: Callable[[np.ndarray], np.ndarray]  # one RGB frame (H, W, 3) float32 [0, 1] -> the same
    templates: tuple[str, ...]  # the instructions the mini model is trained on for this style


_FILTERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sketch": sketch_frame, "watercolor": watercolor_frame, "sepia": sepia_frame, "cartoon": cartoon_frame}
# The phrasings live with the other presets in training.templates (the `latents` data source trains on them).
STYLES: dict[str, Style] = {name: Style(_FILTERS[name], templates) for name, templates in STYLE_TEMPLATES.items()}


def check_style(style: str) -> Style:
    if style not in STYLES:
        raise ValueError(f"style: unknown {style!r}; choose one of {', '.join(STYLES)}")
    return STYLES[style]


def style_target(frames, style: str):
    """The stylised video: `STYLES[style]`'s filter applied frame by frame.

    Args:
        frames: (F, H, W, 3) torch or numpy floats in [0, 1] (numpy uint8 also works).
        style: one of STYLES (sketch, watercolor, sepia, cartoon).
    Returns:
        (F, H, W, 3) in the input's type (torch: same dtype and device).
    """
    fn = check_style(style).fn
    x = frames_numpy(frames)
    return frames_like(np.stack([fn(f) for f in x]) if len(x) else x.copy(), frames)


def style_instruction(style: str, index: int = 0) -> str:
    """Phrasing `index` (modulo their number) of `style`'s templates; 0 is the canonical one."""
    templates = check_style(style).templates
    return templates[index % len(templates)]
