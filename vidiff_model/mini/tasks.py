"""The mini model's tasks on plain footage: how a chunk of frames becomes ⟨source, target, instruction⟩.

One function, `make_pair(task, frames, seed)`, used by training (latents precomputed per 16-frame chunk)
and by evaluation (the validation clips degraded the same way, with their own seeds), so both see the same
distribution of degradations:

| task       | source                                                        | target           |
|------------|---------------------------------------------------------------|------------------|
| recolor    | BT.601 luma in three channels                                 | the frames       |
| dehaze     | atmospheric scattering, β ∈ [0.8, 2.5], air 0.7–1.0             | the frames       |
| deblur     | linear motion blur (3–9 px) or defocus (disk, radius 1–2.5 px) | the frames       |
| inpaint    | free-form holes (black) that drift across the frames          | the frames       |
| style:NAME | the frames                                                    | a classical filter (styles.py) |
"""

from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F

from ..training import synthetic
from ..training.templates import RESTORATION_TASKS, instructions, preset_tasks  # noqa: F401  (re-exported)
from ..video_ops import cut_holes

CHUNK = 16  # frames sharing one degradation draw (a training window never crosses chunks)


mini_tasks = preset_tasks  # the restorations, then style:NAME per style


def defocus_blur(frames: torch.Tensor, radius: float) -> torch.Tensor:
    """Disk (pillbox) kernel of `radius` pixels, edge padded; frames (F, H, W, 3)."""
    r = int(math.ceil(radius))
    yy, xx = torch.meshgrid(torch.arange(-r, r + 1.0), torch.arange(-r, r + 1.0), indexing="ij")
    # anti-aliased disk: coverage ramps over one pixel at the rim
    kernel = (radius + 0.5 - (yy ** 2 + xx ** 2).sqrt()).clamp(0, 1)
    kernel = kernel / kernel.sum()
    k = kernel.shape[0]
    x = F.pad(frames.permute(0, 3, 1, 2), (r, r, r, r), mode="replicate")
    out = F.conv2d(x, kernel.view(1, 1, k, k).expand(3, 1, k, k), groups=3)
    return out.permute(0, 2, 3, 1).clamp(0, 1)


def moving_mask(frames: int, height: int, width: int, g: torch.Generator) -> torch.Tensor:
    """(F, H, W) free-form holes that drift by up to 1.5 px per frame in a random direction."""
    base = synthetic.free_form_mask(height, width, g, strokes=(1, 3), max_cover=0.35)
    angle = float(torch.rand((), generator=g)) * 2 * math.pi
    speed = float(torch.rand((), generator=g)) * 1.5
    return torch.stack([torch.roll(base, (round(f * speed * math.sin(angle)), round(f * speed * math.cos(angle))),
                                   dims=(0, 1)) for f in range(frames)])


def make_pair(task: str, frames: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(source, target, extras) for `task` from clean frames (F, H, W, 3) in [0, 1]; a pure function of
    its arguments. extras: what a classical baseline may know (the inpainting mask)."""
    g = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    if task == "recolor":
        return synthetic.grayscale(frames), frames, {}
    if task == "dehaze":
        return synthetic.add_haze(frames, g), frames, {}
    if task == "deblur":
        if rng.random() < 0.5:
            return synthetic.add_motion_blur(frames, g, length=(3, 9)), frames, {}
        return defocus_blur(frames, rng.uniform(1.0, 2.5)), frames, {}
    if task == "inpaint":
        mask = moving_mask(frames.shape[0], frames.shape[1], frames.shape[2], g)
        holes = torch.stack([cut_holes(frames[i:i + 1], mask[i], "black")[0] for i in range(frames.shape[0])])
        return holes, frames, {"mask": mask}
    if task.startswith("style:"):
        from .styles import style_target

        return frames, style_target(frames, task.split(":", 1)[1]), {}
    raise ValueError(f"task {task!r}: choose one of {', '.join(mini_tasks())}")


def degrade_frames(frames: torch.Tensor, task: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The degraded input of a restoration `task` and its hole mask (F, H, W) (zeros but for inpaint).

    Args:
        frames: (F, H, W, 3) clean frames in [0, 1] (the host's IMAGE).
        task: one of RESTORATION_TASKS.
        seed: the degradation draw.
    """
    from ..errors import VIDiffError

    if task not in RESTORATION_TASKS:
        raise VIDiffError(f"task: {task!r} is not a restoration; choose one of {', '.join(RESTORATION_TASKS)}")
    check_images(frames)
    source, _, extras = make_pair(task, frames.float().cpu(), seed)
    mask = extras.get("mask", torch.zeros(frames.shape[:3]))
    return source.to(frames.dtype), mask.float()


def check_images(frames: torch.Tensor) -> None:
    """Raise VIDiffError naming `images` unless `frames` is the host's IMAGE with at least one frame."""
    from ..errors import VIDiffError

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise VIDiffError(f"images: expected frames (F, H, W, 3) with at least one frame, got {tuple(frames.shape)}")
