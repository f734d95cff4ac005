"""Translate a source video into a target video following an instruction: the one call the sampler
node makes (and the command line, and training's validation samples).

Latent scales: `source` and the result are raw VAE latents (what the host's VAEEncode gives and its
VAEDecode reads); sampling happens in SD-1.5's scaled space (× 0.18215); the source enters the UNet
unscaled, as in InstructPix2Pix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from .config import SD15_LATENT_CHANNELS
from .errors import LatentError, VIDiffError
from .guidance import GuidanceConfig, guided_eps_fn
from .long_video.carry import Carry, carried_frames, frame_noise
from .long_video.modes import ClipRun, LongVideoOptions, run_long_video
from .long_video.planner import Clip
from .sampling import ClipSampler, DiffusersSampler, make_noise


@dataclass(frozen=True)
class StepInfo:
    """Progress of a translation, for progress bars, previews and cancellation."""

    clip: int  # 0-based clip (or 0 for a single run)
    clips: int
    step: int  # steps done in this clip, 1..steps
    steps: int
    denoised: torch.Tensor  # current clean estimate of the clip, scaled latent (B, 4, F, H, W)
    frames: int = 0  # frames of the whole video

    @property
    def fraction(self) -> float:
        return (self.clip + self.step / self.steps) / self.clips


@dataclass
class VideoResult:
    latent: torch.Tensor  # (B, 4, F, H, W) raw VAE scale
    clips: list[Clip]
    clip_results: list[torch.Tensor]  # each clip's own result (raw), shared frames included
    carry: Carry | None = None  # with `continue_from`: what the next part continues from


def translate_video(model, source: torch.Tensor, instruction: torch.Tensor, null_instruction: torch.Tensor, *,
                    seed: int = 0, sampler: ClipSampler | None = None, guidance: GuidanceConfig | None = None,
                    long_video: LongVideoOptions | None = None,
                    continuation: Callable[[int], torch.Tensor] | None = None,
                    callback: Callable[[StepInfo], None] | None = None,
                    interrupt: Callable[[], None] | None = None,
                    continue_from: Carry | None = None) -> VideoResult:
    """Args:
        model: a VIDiffModel, or anything with its `config`, `device`, `dtype` and forward (or a `guided_eps`
            with `guided_eps_fn`'s arguments).
        source: (B, 4, F, H, W) raw VAE latent of the source video (F may be any length).
        instruction: (B, T, D) tokens from `model.encode_instruction`; null_instruction: ∅_T (or a negative).
        seed: noise seed; same seed, device and settings give the same result.
        sampler: a ClipSampler (default DiffusersSampler("euler", "normal", 20)); a DiffusersSampler without
            an explicit `beta_schedule` runs on the model's (`model.config.beta_schedule`).
        guidance: s_V, s_T and batching (default 1.5 / 7.5, batched).
        long_video: clip settings; None means one clip of the whole video (up to the motion module's limit).
        continuation: n -> tokens of "Based on the first n frames, <instruction>" (autoregressive mode).
        callback: called after every step; raise from it to cancel.
        interrupt: called before every model evaluation (every clip, window and step); raise to cancel
            within a step.
        continue_from: translate `source` as the next part of a video translated in parts (long_video.carry):
            noise per frame index, clips continuing from the carried frames; the result holds the new frames only
            and `result.carry` is what the part after this one continues from. `Carry()` starts a video.
    """
    sampler = sampler or DiffusersSampler()
    if hasattr(sampler, "for_model"):  # samplers that take the model's noise schedule (DiffusersSampler)
        sampler = sampler.for_model(model.config.beta_schedule)
    guidance = guidance or GuidanceConfig()
    if source.ndim != 5 or source.shape[2] < 1:
        raise LatentError(f"source: expected a video latent (batch, 4, frames, height/8, width/8) with at least "
                          f"one frame, got {tuple(source.shape)}")
    if source.shape[1] != SD15_LATENT_CHANNELS:
        raise LatentError(f"source: a {source.shape[1]}-channel latent; VIDiff works on SD-1.5 latents "
                          f"({SD15_LATENT_CHANNELS} channels): encode the video with the SD-1.5 VAE")
    if long_video is None:
        limit = model.config.unet.motion_max_seq_length
        long_video = LongVideoOptions(clip_length=max(limit, 1), overlap=0, mode="overlap_guided")
        if source.shape[2] > limit:
            raise LatentError(f"source: {source.shape[2]} frames is more than one clip ({limit} frames for this "
                              "motion module); connect long-video settings (VIDiffLongVideo) to sample it in clips")
    model_dtype = model.dtype
    scale = model.config.latent_scaling_factor
    source = source.to(model.device, torch.float32)
    generator = torch.Generator("cpu").manual_seed(int(seed))
    new_frames, done = source.shape[2], None
    if continue_from is None:
        noise = make_noise(tuple(source.shape), seed, device=model.device)
    else:
        if long_video.mode == "sliding_window":
            raise VIDiffError("long_video: sliding_window denoises the whole video at every step, so it cannot go "
                              "part by part (meta batches, segments); choose autoregressive or overlap_guided")
        continue_from.check_part(source)
        if continue_from.frames:  # the carried frames first: shared with this part's first clip
            done = continue_from.results.to(model.device, torch.float32)
            source = torch.cat([continue_from.source.to(source), source], dim=2)
        b, c, _, h, w = source.shape
        noise = frame_noise(seed, continue_from.frames_done - continue_from.frames, source.shape[2], (b, c, h, w),
                            device=model.device)

    # A model may bring its own guided ε (the host's MODEL does: its branches run through the host's
    # conditioning and batching); otherwise the branches are batched forwards of the model itself.
    guided_eps = getattr(model, "guided_eps", None) or partial(guided_eps_fn, model)

    def eps_for(source_clip: torch.Tensor, clip_instruction: torch.Tensor):
        guided = guided_eps(clip_instruction.to(model.device, model_dtype),
                            null_instruction.to(model.device, model_dtype), source_clip.to(model_dtype), guidance)

        def eps(x_in: torch.Tensor, t: torch.Tensor, sigma: float) -> torch.Tensor:
            if interrupt is not None:
                interrupt()
            with torch.no_grad():
                return guided(x_in.to(model_dtype), t, sigma).float()

        return eps

    def sample(eps_fn, clip_noise: torch.Tensor, clip: int, clips: int) -> torch.Tensor:
        def on_step(step: int, steps: int, denoised: torch.Tensor) -> None:
            if callback is not None:
                callback(StepInfo(clip, clips, step, steps, denoised, source.shape[2]))

        return sampler(eps_fn, clip_noise, generator, on_step)

    run = ClipRun(eps_for=eps_for, sample=sample, instruction=instruction, continuation=continuation, scale=scale,
                  done=done)
    latent, clips = run_long_video(run, source, noise, long_video)
    if continue_from is None:
        return VideoResult(latent=latent, clips=clips, clip_results=run.clip_results)
    carry = continue_from.after(source, latent, new_frames, carried_frames(long_video.clip_length))
    return VideoResult(latent=latent[:, :, latent.shape[2] - new_frames:], clips=clips,
                       clip_results=run.clip_results, carry=carry)
