"""Classical per-frame baselines for the mini quality table (issue 13, item 8).

`BASELINES[task](frames, **known)`: frames are the degraded input, (F, H, W, 3) floats in [0, 1], torch or
numpy; the result has the input's type. `known` is what the degradation reveals (`tasks.make_pair`'s
extras): inpaint needs `mask`; every baseline ignores keys it does not use.

| task    | baseline                                                                                      |
|---------|-----------------------------------------------------------------------------------------------|
| dehaze  | dark channel prior (He, Sun, Tang, CVPR 2009), transmission refined by a guided filter (He 2010) |
| deblur  | Richardson–Lucy (scikit-image), 5 iterations, *assumed* Gaussian PSF: the true kernel is unknown |
| inpaint | OpenCV Telea (2004) fast marching inpainting with the known hole mask                        |
| recolor | the gray input itself (no colour information exists without a model)                         |

Every frame is processed on its own (no temporal information), so their warping error is the per-frame
reference the model is compared with.
"""

from __future__ import annotations

import numpy as np

from .styles import frames_like, frames_numpy, to_uint8

# dark channel prior (He et al. 2009): a 15 px patch on their ~600 × 400 images, ω, t0, the top 0.1 %
DCP_PATCH, DCP_REFERENCE_SIDE, DCP_OMEGA, DCP_T0, DCP_TOP = 15, 400, 0.95, 0.1, 0.001
GUIDED_EPS = 1e-3
# deblur: the assumed PSF and iterations (see `deblur_richardson_lucy`)
DEBLUR_SIGMA, DEBLUR_ITERATIONS = 1.0, 5
TELEA_RADIUS = 3


def dcp_patch(height: int, width: int) -> int:
    """He et al.'s 15 px patch scaled to the frame's short side (odd, at least 3): 5 px at 128 px."""
    p = int(round(DCP_PATCH * min(height, width) / DCP_REFERENCE_SIDE))
    return max(3, p + (1 - p % 2))


def _box(x: np.ndarray, r: int) -> np.ndarray:
    import cv2

    return cv2.blur(x, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He, Sun, Tang 2010 guided filter with a gray guide (H, W) and source (H, W), float32."""
    mean_i, mean_p = _box(guide, radius), _box(src, radius)
    cov = _box(guide * src, radius) - mean_i * mean_p
    var = _box(guide * guide, radius) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return _box(a, radius) * guide + _box(b, radius)


def dehaze_frame(frame: np.ndarray) -> np.ndarray:
    """Dark channel prior on one frame (H, W, 3) float32 [0, 1]."""
    import cv2

    h, w = frame.shape[:2]
    patch = dcp_patch(h, w)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (patch, patch))
    dark = cv2.erode(frame.min(axis=2), kernel, borderType=cv2.BORDER_REFLECT)
    # airlight: mean colour of the input over the brightest 0.1 % of the dark channel (the paper takes the
    # single brightest input pixel among them; the mean is the common, less noise-prone variant)
    n = max(1, int(round(DCP_TOP * h * w)))
    top = np.argpartition(dark.ravel(), -n)[-n:]
    airlight = np.maximum(frame.reshape(-1, 3)[top].mean(axis=0), 1e-3)
    normalized = (frame / airlight).astype(np.float32)
    t = 1 - DCP_OMEGA * cv2.erode(normalized.min(axis=2), kernel, borderType=cv2.BORDER_REFLECT)
    gray = frame.mean(axis=2).astype(np.float32)
    t = guided_filter(gray, t.astype(np.float32), radius=4 * patch, eps=GUIDED_EPS)
    t = np.maximum(t, DCP_T0)[..., None]
    return np.clip((frame - airlight) / t + airlight, 0, 1).astype(np.float32)


def dehaze_dcp(frames, **known):
    """Dark channel prior per frame: patch 15 px scaled to the frame (`dcp_patch`), ω 0.95, t0 0.1, airlight
    from the top 0.1 % of the dark channel, transmission refined by a guided filter (radius 4 × patch, ε 1e-3,
    gray guide). Args: frames (F, H, W, 3) hazy, in [0, 1]."""
    x = frames_numpy(frames)
    return frames_like(np.stack([dehaze_frame(f) for f in x]), frames)


def gaussian_psf(sigma: float) -> np.ndarray:
    r = max(1, int(np.ceil(3 * sigma)))
    ax = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def deblur_richardson_lucy(frames, *, sigma: float = DEBLUR_SIGMA, iterations: int = DEBLUR_ITERATIONS, **known):
    """Richardson–Lucy deconvolution (`skimage.restoration.richardson_lucy`) per frame and channel with an
    *assumed* PSF, because the true blur (a 3–9 px line at a random angle, or a 1–2.5 px disk) is unknown to
    a per-frame baseline: an isotropic Gaussian of σ 1 px, 5 iterations (chosen on the training clips'
    degradations, not the validation ones; Wiener with the same PSF gained slightly less). Frames are edge
    padded against the FFT's wrap-around. Args: frames (F, H, W, 3) blurry, in [0, 1]."""
    from skimage.restoration import richardson_lucy

    psf = gaussian_psf(sigma)
    r = psf.shape[0] // 2 + 4
    x = frames_numpy(frames)
    out = np.empty_like(x)
    for i, f in enumerate(x):
        padded = np.pad(f, ((r, r), (r, r), (0, 0)), mode="edge")
        for c in range(3):
            out[i, :, :, c] = richardson_lucy(padded[:, :, c], psf, num_iter=iterations)[r:-r, r:-r]
    return frames_like(np.clip(out, 0, 1), frames)


def inpaint_telea(frames, *, mask, radius: int = TELEA_RADIUS, **known):
    """OpenCV's Telea inpainting per frame on the known holes.

    Args:
        frames: (F, H, W, 3) with holes, in [0, 1].
        mask: the holes, 1 inside: (H, W) for every frame or (F, H, W), torch or numpy.
        radius: Telea's neighbourhood radius in pixels.
    """
    import cv2
    import torch

    x = frames_numpy(frames)
    m = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if m.ndim == 2:
        m = np.broadcast_to(m, x.shape[:3])
    if m.shape != x.shape[:3]:
        raise ValueError(f"mask: {tuple(m.shape)} does not match the frames {tuple(x.shape[:3])}; "
                         "give (H, W) or (F, H, W)")
    out = np.stack([cv2.inpaint(to_uint8(f), (mf > 0.5).astype(np.uint8), radius, cv2.INPAINT_TELEA)
                    for f, mf in zip(x, m)]).astype(np.float32) / 255
    keep = (m <= 0.5)[..., None]
    return frames_like(np.where(keep, x, out), frames)  # known pixels stay exactly as given


def recolor_gray(frames, **known):
    """The gray input itself. Args: frames (F, H, W, 3) gray (luma in all three channels)."""
    return frames_like(frames_numpy(frames), frames)


BASELINES = {"dehaze": dehaze_dcp, "deblur": deblur_richardson_lucy, "inpaint": inpaint_telea, "recolor": recolor_gray}
BASELINE_NAMES = {"dehaze": "dark channel prior", "deblur": "Richardson–Lucy (assumed Gaussian PSF σ 1)",
                  "inpaint": "OpenCV Telea", "recolor": "gray input"}


def baseline(task: str, frames, **known):
    """`BASELINES[task](frames, **known)`, with a ValueError naming the tasks for an unknown one."""
    if task not in BASELINES:
        raise ValueError(f"task: no classical baseline for {task!r}; choose one of {', '.join(BASELINES)}")
    return BASELINES[task](frames, **known)
