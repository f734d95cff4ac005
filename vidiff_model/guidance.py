"""Dual classifier-free guidance over a video (s_V) and a text (s_T) condition (DESIGN §1.2).

InstructPix2Pix's formula, with ∅_V a zero source latent and ∅_T the null instruction:

    ε̂ = ε(x, ∅_V, ∅_T) + s_V·(ε(x, V, ∅_T) − ε(x, ∅_V, ∅_T)) + s_T·(ε(x, V, c) − ε(x, V, ∅_T))

Rearranged per branch it is a weighted sum whose weights add up to one:

    ε̂ = (1 − s_V)·ε(∅_V, ∅_T) + (s_V − s_T)·ε(V, ∅_T) + s_T·ε(V, c)

so a branch whose weight is exactly zero is not computed: s_V = 1 drops the no-video branch,
s_V = s_T drops the video-only branch (s_V = s_T = 1 leaves one forward), s_T = 0 drops the full one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .errors import VIDiffError

# eps_fn(x_in, t, sigma): x_in (B, 4, F, H, W) noisy latent in variance-preserving form
# (sqrt(ᾱ)·x0 + sqrt(1 − ᾱ)·ε, scaled latent space), t the diffusion timestep (float, 0..999),
# sigma = sqrt((1 − ᾱ)/ᾱ) the same noise level. Returns ε (B, 4, F, H, W).
EpsFn = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


@dataclass(frozen=True)
class GuidanceConfig:
    """The paper's two scales and how the branches run.

    Args:
        video_cfg: s_V, strength of the source video (InstructPix2Pix's image guidance, default 1.5).
        text_cfg: s_T, strength of the instruction (default 7.5).
        batched: run the needed branches as one batched forward (fast); False runs them one after
            another (less memory, same result within floating-point tolerance).
    """

    video_cfg: float = 1.5
    text_cfg: float = 7.5
    batched: bool = True

    def __post_init__(self) -> None:
        for name in ("video_cfg", "text_cfg"):
            value = getattr(self, name)
            if not (0.0 <= value <= 100.0):
                raise VIDiffError(f"{name}: {value} is out of range; use a guidance scale between 0 and 100")

    def branch_weights(self) -> dict[str, float]:
        """Weights of the branches that are computed: 'null' (∅_V, ∅_T), 'video' (V, ∅_T), 'full' (V, c)."""
        weights = {"null": 1.0 - self.video_cfg, "video": self.video_cfg - self.text_cfg, "full": self.text_cfg}
        return {name: w for name, w in weights.items() if w != 0.0}


def guided_eps_fn(model, instruction: torch.Tensor, null_instruction: torch.Tensor, source_latent: torch.Tensor,
                  guidance: GuidanceConfig) -> EpsFn:
    """The guided noise prediction for one clip (or window).

    Args:
        model: a `VIDiffModel` (or anything with its forward signature, `sigma` keyword included).
        instruction: c, (B, T, D) tokens; null_instruction: ∅_T (or a negative instruction), (B or 1, T, D).
        source_latent: V, the source latent (B, 4, F, H, W), raw VAE scale (unscaled).
        guidance: scales and batching.
    """
    weights = guidance.branch_weights()
    b = source_latent.shape[0]
    null_instruction = null_instruction.expand(b, -1, -1) if null_instruction.shape[0] == 1 else null_instruction
    conds = {
        "null": (torch.zeros_like(source_latent), null_instruction),
        "video": (source_latent, null_instruction),
        "full": (source_latent, instruction),
    }
    names = list(weights)

    def eps(x_in: torch.Tensor, t: torch.Tensor, sigma: float) -> torch.Tensor:
        if guidance.batched and len(names) > 1:
            n = len(names)
            out = model(x_in.repeat(n, 1, 1, 1, 1), torch.cat([conds[k][0] for k in names]), t,
                        torch.cat([conds[k][1] for k in names]), sigma=sigma).chunk(n)  # n × (B, 4, F, H, W)
        else:
            out = [model(x_in, conds[k][0], t, conds[k][1], sigma=sigma) for k in names]
        return combine_branches(dict(zip(names, out)), weights)

    return eps


def combine_branches(outputs: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """Σ weight·output over the computed branches (`GuidanceConfig.branch_weights`). The weights add up to
    one, so this is the same formula whether the outputs are ε or the clean estimates x0 = x − σ·ε (the
    host's models return x0)."""
    names = list(weights)
    result = outputs[names[0]] * weights[names[0]]
    for name in names[1:]:
        result = result + outputs[name] * weights[name]
    return result
