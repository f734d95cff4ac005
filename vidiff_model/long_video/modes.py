"""The three ways to translate a video longer than one clip (memory bounded by the clip, not the video).

- `autoregressive` (the paper, §1.4): clip 1 is sampled normally; clip k's first `overlap` source
  latents are replaced by clip k−1's last results and the instruction gets the "Based on the first n
  frames" prefix the model was trained with.
- `overlap_guided` (training-free, e.g. InstructPix2Pix + AnimateDiff): clip k's shared frames are
  held to clip k−1's results during sampling: at every step the model sees them as the previous
  result noised to the current level, and their predicted noise is set so that their clean-frame
  estimate *is* the previous result (RePaint-style replacement). The clip continues from them.
- `sliding_window` (AnimateDiff-style): one sampling run over the whole video; at every step each
  window (with its own slice of the source) is denoised and the predictions are blended with a
  weighting (flat or pyramid).
In the first two, the output's shared frames come from clip k−1, so every frame is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..errors import VIDiffError
from ..guidance import EpsFn
from .planner import WEIGHTINGS, Clip, check_clip_settings, plan_clips, window_weights


@dataclass(frozen=True)
class LongVideoOptions:
    """How a video longer than one clip is translated (passed from the VIDiffLongVideo node).

    Args:
        clip_length: frames per clip (16 is what the motion modules were trained on).
        overlap: frames each clip shares with the previous one.
        mode: one of MODES.
        weighting: blending of overlapping windows in `sliding_window` mode (flat, pyramid).
    """

    clip_length: int = 16
    overlap: int = 4
    mode: str = "autoregressive"
    weighting: str = "pyramid"

    def __post_init__(self) -> None:
        check_clip_settings(self.clip_length, self.overlap)
        if self.mode not in MODES:
            raise VIDiffError(f"mode: unknown long-video mode {self.mode!r}; choose one of {sorted(MODES)}")
        if self.weighting not in WEIGHTINGS:
            raise VIDiffError(f"weighting: unknown {self.weighting!r}; choose one of {sorted(WEIGHTINGS)}")


@dataclass
class ClipRun:
    """What a mode needs from the pipeline to sample one clip or window (see pipeline.translate_video).

    `eps_for(source_raw, instruction)` gives the guided noise prediction for a clip;
    `sample(eps_fn, noise, clip_index, clips)` runs the sampler and returns x0, scaled latent space;
    `continuation(n)` gives the instruction tokens for "Based on the first n frames, ...".
    """

    eps_for: Callable[[torch.Tensor, torch.Tensor], EpsFn]
    sample: Callable[[EpsFn, torch.Tensor, int, int], torch.Tensor]
    instruction: torch.Tensor
    continuation: Callable[[int], torch.Tensor] | None
    scale: float
    clip_results: list[torch.Tensor] = field(default_factory=list)  # each clip's own result, raw scale
    done: torch.Tensor | None = None  # (B, 4, d, H, W) raw: the first d frames, translated by an earlier part


def _output(run: ClipRun, source: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(source)  # (B, 4, F, H, W) raw scale
    if run.done is not None:
        out[:, :, :run.done.shape[2]] = run.done.to(out)  # shared with this part's first clip, never rewritten
    return out


def _slice(x: torch.Tensor, clip: Clip) -> torch.Tensor:
    return x[:, :, clip.start:clip.end]  # (B, C, clip frames, H, W)


def autoregressive(run: ClipRun, source: torch.Tensor, noise: torch.Tensor, clips: list[Clip],
                   weighting: str) -> torch.Tensor:
    out = _output(run, source)
    for k, clip in enumerate(clips):
        src, instruction = _slice(source, clip).clone(), run.instruction
        if clip.overlap:
            if run.continuation is None:
                raise VIDiffError("long_video: autoregressive mode needs the instruction text to add "
                                  "'Based on the first n frames'; encode it with VIDiffInstructionEncode")
            src[:, :, :clip.overlap] = out[:, :, clip.start:clip.new_start]  # previous clip's results
            instruction = run.continuation(clip.overlap)
        result = run.sample(run.eps_for(src, instruction), _slice(noise, clip), k, len(clips)) / run.scale
        run.clip_results.append(result)
        out[:, :, clip.new_start:clip.end] = result[:, :, clip.overlap:]
    return out


def _held_frames(eps_fn: EpsFn, held: torch.Tensor, held_noise: torch.Tensor) -> EpsFn:
    """Wrap `eps_fn` so the first n frames follow `held` (scaled x0, (B, 4, n, H, W))."""
    n = held.shape[2]

    def eps(x_in: torch.Tensor, t: torch.Tensor, sigma: float) -> torch.Tensor:
        c = (1.0 + sigma**2) ** 0.5
        # the sampler may run where the model is (the host's GPU) while the previous clip is kept on the CPU
        held_x, noise_x = held.to(x_in.device), held_noise.to(x_in.device)
        x_model = x_in.clone()
        x_model[:, :, :n] = (held_x + sigma * noise_x) / c  # the held frames, noised to this level
        e = eps_fn(x_model, t, sigma).clone()
        e[:, :, :n] = (x_in[:, :, :n] * c - held_x) / sigma  # so the sampler's x0 estimate is exactly `held`
        return e

    return eps


def overlap_guided(run: ClipRun, source: torch.Tensor, noise: torch.Tensor, clips: list[Clip],
                   weighting: str) -> torch.Tensor:
    out = _output(run, source)
    for k, clip in enumerate(clips):
        eps_fn = run.eps_for(_slice(source, clip), run.instruction)
        if clip.overlap:
            held = out[:, :, clip.start:clip.new_start] * run.scale
            eps_fn = _held_frames(eps_fn, held, noise[:, :, clip.start:clip.new_start])
        result = run.sample(eps_fn, _slice(noise, clip), k, len(clips)) / run.scale
        run.clip_results.append(result)
        out[:, :, clip.new_start:clip.end] = result[:, :, clip.overlap:]
    return out


def sliding_window(run: ClipRun, source: torch.Tensor, noise: torch.Tensor, clips: list[Clip],
                   weighting: str) -> torch.Tensor:
    assert run.done is None, "sliding_window has no earlier part to continue from (translate_video refuses it)"
    eps_fns = [run.eps_for(_slice(source, w), run.instruction) for w in clips]
    weights = [torch.tensor(window_weights(w.length, weighting), device=source.device).view(1, 1, -1, 1, 1)
               for w in clips]

    def blended(x_in: torch.Tensor, t: torch.Tensor, sigma: float) -> torch.Tensor:
        total = torch.zeros_like(x_in, dtype=torch.float32)
        norm = torch.zeros(1, 1, x_in.shape[2], 1, 1, device=x_in.device)
        for w, fn, weight in zip(clips, eps_fns, weights):
            weight = weight.to(x_in.device)  # made beside the source (CPU); the sampler's x may be on the GPU
            total[:, :, w.start:w.end] += fn(_slice(x_in, w), t, sigma).float() * weight
            norm[:, :, w.start:w.end] += weight
        return total / norm

    eps = eps_fns[0] if len(clips) == 1 else blended  # one window: nothing to blend (and no rounding)
    result = run.sample(eps, noise, 0, 1) / run.scale
    run.clip_results.append(result)
    return result


MODES = {"autoregressive": autoregressive, "overlap_guided": overlap_guided, "sliding_window": sliding_window}


def run_long_video(run: ClipRun, source: torch.Tensor, noise: torch.Tensor,
                   options: LongVideoOptions) -> tuple[torch.Tensor, list[Clip]]:
    """Translate `source` (B, 4, F, H, W) raw with `options.mode`; returns (result raw, clips). With `run.done`, its
    first frames are already translated (an earlier part's) and are shared, not translated again."""
    done = 0 if run.done is None else run.done.shape[2]
    clips = plan_clips(source.shape[2], options.clip_length, options.overlap, done=done)
    return MODES[options.mode](run, source, noise, clips, options.weighting), clips
