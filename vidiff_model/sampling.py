"""Sampling one clip with diffusers' schedulers (the library's samplers, used outside ComfyUI).

Inside ComfyUI the nodes hand the host's own samplers the same guided noise prediction instead; both
implement `ClipSampler`: `(eps_fn, noise, generator, on_step) -> x0` in the scaled latent space.

Noise schedule: the model's (`VIDiffConfig.beta_schedule`): "sd15", SD-1.5's scaled-linear betas
0.00085..0.012 over 1000 steps, or "animatediff", the linear betas 0.00085..0.012 the AnimateDiff motion
modules were trained with (`noise_scheduler_kwargs` in guoyww/AnimateDiff configs/inference/*.yaml);
epsilon prediction, timesteps spaced "trailing" so the first step starts from pure noise. "normal" uses
that spacing; "karras" uses Karras et al.'s sigmas between the same end points.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Protocol

import numpy as np
import torch
from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, UniPCMultistepScheduler)

from .config import BETA_SCHEDULES
from .errors import VIDiffError
from .guidance import EpsFn

SD15_SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                     prediction_type="epsilon", timestep_spacing="trailing", steps_offset=1)
# VIDiff's schedule name -> diffusers' `beta_schedule` (ComfyUI calls these "linear" and "sqrt_linear")
DIFFUSERS_BETA_SCHEDULES = {"sd15": "scaled_linear", "animatediff": "linear"}
assert set(DIFFUSERS_BETA_SCHEDULES) == set(BETA_SCHEDULES)

# sampler name (ComfyUI's spelling) -> diffusers scheduler class and its extra settings
SAMPLERS: dict[str, tuple[type, dict]] = {
    "euler": (EulerDiscreteScheduler, {}),
    "euler_ancestral": (EulerAncestralDiscreteScheduler, {}),
    "ddim": (DDIMScheduler, {"clip_sample": False, "set_alpha_to_one": True}),  # last step lands on x0
    "dpmpp_2m": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "uni_pc": (UniPCMultistepScheduler, {"solver_order": 2}),
}
SCHEDULES: dict[str, dict] = {"normal": {}, "karras": {"use_karras_sigmas": True}}

OnStep = Callable[[int, int, torch.Tensor], None]  # (steps done, steps, x0 estimate (B, 4, F, H, W))


class ClipSampler(Protocol):
    def __call__(self, eps_fn: EpsFn, noise: torch.Tensor, generator: torch.Generator,
                 on_step: OnStep | None = None) -> torch.Tensor: ...


def make_noise(shape: tuple[int, ...], seed: int, device: torch.device | str = "cpu",
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal noise drawn on the CPU from `seed`: the same seed gives the same noise anywhere."""
    g = torch.Generator("cpu").manual_seed(int(seed))
    return torch.randn(shape, generator=g, dtype=torch.float32).to(device=device, dtype=dtype)


def schedule_settings(beta_schedule: str = "sd15") -> dict:
    """diffusers scheduler settings for one of BETA_SCHEDULES."""
    if beta_schedule not in DIFFUSERS_BETA_SCHEDULES:
        raise VIDiffError(f"beta_schedule: unknown schedule {beta_schedule!r}; choose one of {list(BETA_SCHEDULES)}")
    return {**SD15_SCHEDULE, "beta_schedule": DIFFUSERS_BETA_SCHEDULES[beta_schedule]}


def alphas_cumprod(beta_schedule: str = "sd15") -> torch.Tensor:
    """ᾱ_t of a training schedule, t = 0..999 (float64)."""
    s = schedule_settings(beta_schedule)
    start, end, n = s["beta_start"], s["beta_end"], s["num_train_timesteps"]
    if s["beta_schedule"] == "scaled_linear":
        betas = torch.linspace(start**0.5, end**0.5, n, dtype=torch.float64) ** 2
    else:  # "linear": AnimateDiff's betas
        betas = torch.linspace(start, end, n, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


def sd15_alphas_cumprod() -> torch.Tensor:
    """ᾱ_t of SD-1.5's training schedule, t = 0..999 (float64)."""
    return alphas_cumprod("sd15")


@lru_cache(maxsize=None)
def log_sigma_table(beta_schedule: str) -> torch.Tensor:
    """log σ_t = ½·log((1 − ᾱ_t)/ᾱ_t), t = 0..999 (float64, read only): the schedule as `sigma_at` and the
    model's v-prediction (`model.alpha_bar_at`) read it, built once per schedule."""
    abar = alphas_cumprod(beta_schedule)
    return 0.5 * torch.log((1 - abar) / abar)


def sigma_at(t: float | torch.Tensor, beta_schedule: str = "sd15") -> float:
    """σ = sqrt((1 − ᾱ_t)/ᾱ_t) at a (possibly fractional) timestep, interpolated in log σ as the
    Karras-style schedulers place fractional timesteps."""
    log_sigmas = log_sigma_table(beta_schedule).numpy()
    return float(np.exp(np.interp(float(t), np.arange(len(log_sigmas)), log_sigmas)))


@dataclass(frozen=True)
class DiffusersSampler:
    """`ClipSampler` on diffusers' schedulers.

    Args:
        sampler_name: one of SAMPLERS (euler, euler_ancestral, ddim, dpmpp_2m, uni_pc).
        scheduler: one of SCHEDULES (normal, karras).
        steps: denoising steps.
        beta_schedule: the noise schedule (sd15, animatediff); None: the model's (`translate_video` fills it in).
    """

    sampler_name: str = "euler"
    scheduler: str = "normal"
    steps: int = 20
    beta_schedule: str | None = None

    def __post_init__(self) -> None:
        if self.sampler_name not in SAMPLERS:
            raise VIDiffError(f"sampler_name: unknown sampler {self.sampler_name!r}; choose one of {sorted(SAMPLERS)}")
        if self.scheduler not in SCHEDULES:
            raise VIDiffError(f"scheduler: unknown schedule {self.scheduler!r}; choose one of {sorted(SCHEDULES)}")
        if not 1 <= int(self.steps) <= 1000:
            raise VIDiffError(f"steps: {self.steps} is out of range; use 1 to 1000")
        if self.beta_schedule is not None:
            schedule_settings(self.beta_schedule)  # a named error for an unknown schedule

    def for_model(self, beta_schedule: str) -> "DiffusersSampler":
        """This sampler on the model's schedule, unless one was chosen explicitly."""
        return self if self.beta_schedule is not None else replace(self, beta_schedule=beta_schedule)

    @property
    def _schedule(self) -> str:
        return self.beta_schedule or "sd15"

    def make_scheduler(self, device: torch.device | str = "cpu"):
        """The diffusers scheduler with its timesteps set."""
        name, karras = self.sampler_name, self.scheduler == "karras"
        if name == "ddim" and karras:
            # Deterministic DDIM is Euler's method in σ-space (x/ᾱ^½ against σ): with Karras σs, DDIM *is* Euler.
            name = "euler"
        cls, extra = SAMPLERS[name]
        schedule = schedule_settings(self._schedule)
        settings = {**schedule, **extra}
        if karras and "use_karras_sigmas" in inspect.signature(cls.__init__).parameters:
            settings.update(SCHEDULES["karras"])
        sched = cls(**settings)
        sched.set_timesteps(self.steps, device=device)
        if karras and name == "euler_ancestral":
            # diffusers' ancestral Euler has no Karras option: give it Euler's Karras σs and timesteps.
            ref = EulerDiscreteScheduler(**schedule, use_karras_sigmas=True)
            ref.set_timesteps(self.steps, device=device)
            sched.sigmas, sched.timesteps = ref.sigmas.clone(), ref.timesteps.clone()
        return sched

    def __call__(self, eps_fn: EpsFn, noise: torch.Tensor, generator: torch.Generator,
                 on_step: OnStep | None = None) -> torch.Tensor:
        sched = self.make_scheduler(noise.device)
        takes_generator = "generator" in inspect.signature(sched.step).parameters
        x = noise.float() * sched.init_noise_sigma  # (B, 4, F, H, W)
        steps = len(sched.timesteps)
        for i, t in enumerate(sched.timesteps):
            # 1. the model's input at this noise level, variance-preserving form
            x_in = sched.scale_model_input(x, t)
            sigma = sigma_at(t, self._schedule)
            # 2. guided noise prediction
            eps = eps_fn(x_in, t, sigma).float()
            # 3. scheduler update
            kwargs = {"generator": generator} if takes_generator else {}
            x = sched.step(eps, t, x, **kwargs).prev_sample
            # 4. progress, preview and cancellation (the callback may raise to stop)
            if on_step is not None:
                on_step(i + 1, steps, (x_in * (1 + sigma**2) ** 0.5 - sigma * eps))
        return x
