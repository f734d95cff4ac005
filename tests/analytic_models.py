"""Closed-form stand-ins for the VIDiff UNet, with the same call signature, for exact tests."""

from __future__ import annotations

import torch

from vidiff_model import tiny_config
from vidiff_model.sampling import sigma_at


class AnalyticModel(torch.nn.Module):
    """Base: records every call; float64; no parameters. Subclasses define `target` or `forward`."""

    def __init__(self, max_frames: int = 32, dtype: torch.dtype = torch.float64):
        super().__init__()
        cfg = tiny_config(image_instruction=False)
        self.config = cfg.__class__(unet=cfg.unet.__class__(**{**cfg.unet.__dict__, "motion_max_seq_length": max_frames}))
        self._dtype = dtype
        self.calls: list[dict] = []

    @property
    def dtype(self):
        return self._dtype

    @property
    def device(self):
        return torch.device("cpu")

    def check_latents(self, noisy, source):
        assert noisy.shape[1] == 4 and source.shape[1] == 4


class LinearModel(AnalyticModel):
    """ε = 0.3·x + 0.5·source + shift(instruction) + 1e-4·t: any fixed function does for the formula."""

    def forward(self, x, source, t, instruction, sigma=None):
        self.calls.append({"batch": x.shape[0], "source": source.clone(), "instruction": instruction.clone()})
        shift = instruction[:, 0, :4].reshape(-1, 4, 1, 1, 1)
        return 0.3 * x + 0.5 * source + shift + 1e-4 * torch.as_tensor(t, dtype=x.dtype)


class IdealDenoiser(AnalyticModel):
    """The exact ε for a known clean target y (scaled space): ε = (x_in − √ᾱ·y)/√(1 − ᾱ).

    y = 0.18215 · (source + shift(instruction) + clip_offset): a zero source and a null (zero)
    instruction give y = 0; `clip_offset=True` adds the mean of the clip's source, which differs
    from clip to clip (a stand-in for a model whose look drifts between clips).
    """

    def __init__(self, clip_offset: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.clip_offset = clip_offset

    def target(self, source, instruction):
        y = source + instruction[:, 0, :4].reshape(-1, 4, 1, 1, 1)
        if self.clip_offset:
            y = y + source.mean(dim=(2, 3, 4), keepdim=True)
        return self.config.latent_scaling_factor * y

    def forward(self, x, source, t, instruction, sigma=None):
        self.calls.append({"batch": x.shape[0], "source": source.clone(), "instruction": instruction.clone(), "t": float(t)})
        sigma = sigma_at(t)
        abar = 1.0 / (1.0 + sigma**2)
        return (x - abar**0.5 * self.target(source, instruction)) / (1.0 - abar) ** 0.5


def instruction_with_shift(shift: list[float], tokens: int = 77, width: int = 768) -> torch.Tensor:
    ins = torch.zeros(1, tokens, width, dtype=torch.float64)
    ins[0, 0, :4] = torch.tensor(shift, dtype=torch.float64)
    return ins
