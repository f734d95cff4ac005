"""Temporal consistency: warping error with classical optical flow (no learned weights).

For each pair of consecutive frames (t, t+1):
1. forward flow f (t -> t+1) and backward flow b (t+1 -> t): OpenCV Farnebäck on 8-bit grayscale
   (pyr_scale 0.5, 3 levels, window 15, 3 iterations, poly_n 5, poly_sigma 1.2);
2. frame t+1 warped back onto frame t along f (bilinear);
3. occlusion mask by forward–backward consistency (Sundaram et al. 2010): a pixel is kept when
   |f + b(x + f)|² < 0.01·(|f|² + |b(x + f)|²) + 0.5;
4. error = mean absolute RGB difference (0–1 scale) between frame t and the warped frame t+1 over
   the kept pixels.
The video's warping error is the mean over pairs. `use_flow=False` compares frames in place (zero
flow, nothing masked): the number a video would get with no motion compensation.
"""

from __future__ import annotations

import numpy as np
import torch

FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)


def _cv2():
    try:
        import cv2
    except ImportError as e:  # an optional dependency of the metrics only
        raise ImportError("warping error needs OpenCV: pip install opencv-python-headless") from e
    return cv2


def _flow(cv2, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return cv2.calcOpticalFlowFarneback(a, b, None, **FARNEBACK)  # (H, W, 2): dx, dy


def _warp(cv2, image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def warping_errors(frames: torch.Tensor, use_flow: bool = True) -> list[float]:
    """Per consecutive pair, the masked warping error (see the module docstring)."""
    cv2 = _cv2()
    video = frames.detach().cpu().float().clamp(0, 1).numpy()  # (F, H, W, 3)
    gray = [cv2.cvtColor((f * 255).round().astype(np.uint8), cv2.COLOR_RGB2GRAY) for f in video]
    errors = []
    for t in range(len(video) - 1):
        if not use_flow:
            errors.append(float(np.abs(video[t] - video[t + 1]).mean()))
            continue
        fwd, bwd = _flow(cv2, gray[t], gray[t + 1]), _flow(cv2, gray[t + 1], gray[t])
        warped = _warp(cv2, video[t + 1], fwd)
        bwd_at = _warp(cv2, bwd, fwd)  # b(x + f(x))
        diff = ((fwd + bwd_at) ** 2).sum(-1)
        keep = diff < 0.01 * ((fwd**2).sum(-1) + (bwd_at**2).sum(-1)) + 0.5
        err = np.abs(video[t] - warped).mean(-1)
        errors.append(float(err[keep].mean()) if keep.any() else float("nan"))
    return errors
