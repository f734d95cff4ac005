"""VIDiff Sampler on the host's MODEL: the library's translation (dual guidance formula, long-video modes, seams,
continuation, VIDiff's noise layout) driving the host's own model, conditioning, batching and samplers.

`translate_video` (the library) asks a model for a guided ε per clip or window and a `ClipSampler` for each
sampling run. Here:
- `HostVideoModel.guided_eps` evaluates the three guidance branches as host conds (the source window as the
  InstructPix2Pix concat latent) with the host's `calc_cond_batch`, so every patch on the MODEL applies, and
  combines them with the library's weights;
- `HostClipSampler` runs each clip through a host guider (`ClipGuider`) and the host's KSAMPLER: loading,
  wrappers, callbacks and memory management are the host's, in the sampler's own layout (1, 4, F, h, w).
"""

from __future__ import annotations

import comfy.sampler_helpers
import comfy.samplers
import node_helpers
import torch

from ..vidiff_model.guidance import EpsFn, GuidanceConfig
from ..vidiff_model.instruction import encode_instruction
from .host_guider import guided_prediction
from .model_injection import vidiff_attachment


class ClipGuider(comfy.samplers.CFGGuider):
    """A host guider whose prediction is a library ε function (x_in, t, σ) -> ε over (1, 4, F, h, w)."""

    def __init__(self, model, eps_fn: EpsFn, video_model: "HostVideoModel"):
        super().__init__(model)
        self.eps_fn, self.video_model = eps_fn, video_model
        self.model_options_now: dict = {}

    def predict_noise(self, x, timestep, model_options={}, seed=None):
        sigma = float(timestep.flatten()[0])
        t = self.inner_model.model_sampling.timestep(timestep.flatten()[:1])[0]
        self.model_options_now = model_options  # what the branches run with (patches, wrappers, hooks)
        # the variance-preserving input, in float64 so that the branches get x back exactly (x_in · c)
        eps = self.eps_fn(x.double() / (1.0 + sigma**2) ** 0.5, t, sigma)
        exact = self.video_model.clean_estimate_of(eps)
        if exact is not None:  # ε is the branches' own, untouched: their clean estimate, without a float round trip
            return exact.to(x.dtype)
        return x - sigma * eps.to(x.dtype)  # the clean estimate the host's samplers expect


class HostVideoModel:
    """A host MODEL with VIDiff's layers as `translate_video` uses a model: config, device, dtype, instruction
    encoding and a guided ε per clip that runs on the guider sampling at the time."""

    def __init__(self, model):
        self.patcher = model
        self.attachment = vidiff_attachment(model)
        self.config = self.attachment.config
        # Where translate_video keeps its tensors. float64: the ε ↔ x conversions between the library's modes and
        # the host's clean estimates stay exact (the host casts what it is given to its own dtype).
        self.device, self.dtype = torch.device("cpu"), torch.float64
        self.guider: ClipGuider | None = None  # set by HostClipSampler for each sampling run
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None  # (ε handed out, the clean estimate it came from)

    def clean_estimate_of(self, eps: torch.Tensor) -> torch.Tensor | None:
        """The guided clean estimate (1, 4, f, h, w) behind `eps` when `eps` is the tensor the last branch evaluation
        returned (a mode that changed it, e.g. holding frames, gets None)."""
        last, self._last = self._last, None
        return last[1] if last is not None and last[0] is eps else None

    def encode_instruction(self, text_hidden: torch.Tensor, image_embeds: torch.Tensor | None = None) -> torch.Tensor:
        return encode_instruction(self.config, self.attachment.image_proj, text_hidden, image_embeds,
                                  device=self.device, dtype=torch.float32)

    def null_instruction(self, null_text_hidden: torch.Tensor) -> torch.Tensor:
        return self.encode_instruction(null_text_hidden, None)

    def guided_eps(self, instruction: torch.Tensor, null_instruction: torch.Tensor, source: torch.Tensor,
                   guidance: GuidanceConfig) -> EpsFn:
        """Dual guidance for one clip or window: `source` (1, 4, f, h, w) raw, tokens (1, T, D)."""
        weights = guidance.branch_weights()
        frames = source[0].transpose(0, 1)  # (f, 4, h, w): frames are the host's batch
        video = {"concat_latent_image": frames}
        branches = {"full": node_helpers.conditioning_set_values([[instruction, {}]], video),
                    "video": node_helpers.conditioning_set_values([[null_instruction, {}]], video),
                    "null": [[null_instruction, {"concat_latent_image": None}]]}  # ∅_V: zeros
        conds: dict[str, list] = {}

        def eps(x_in: torch.Tensor, t: torch.Tensor, sigma: float) -> torch.Tensor:
            guider = self.guider
            assert guider is not None, "guided_eps runs inside a HostClipSampler run"
            inner = guider.inner_model
            x = (x_in.double() * (1.0 + sigma**2) ** 0.5).float()  # the sampler's x (float32), exactly
            x = x[0].transpose(0, 1).to(guider.model_patcher.load_device)  # (f, 4, h, w)
            if not conds:  # the host's own processing of the conds (concat latent, areas), once per clip
                raw = {n: comfy.sampler_helpers.convert_cond(c) for n, c in branches.items()}
                conds.update(comfy.samplers.process_conds(inner, x, raw, x.device))
            sigmas = torch.full((x.shape[0],), sigma, device=x.device)
            x0 = guided_prediction(inner, conds, x, sigmas, guider.model_options_now, weights)
            eps_out = ((x.double() - x0) / sigma).float().transpose(0, 1).unsqueeze(0)  # (1, 4, f, h, w)
            self._last = (eps_out, x0.transpose(0, 1).unsqueeze(0))
            return eps_out

        return eps


class HostClipSampler:
    """`ClipSampler` on the host: its samplers, schedulers and the MODEL's own noise schedule."""

    def __init__(self, video_model: HostVideoModel, sampler_name: str, scheduler: str, steps: int, seed: int):
        self.video_model = video_model
        self.sampler_name, self.scheduler, self.steps, self.seed = sampler_name, scheduler, steps, seed

    def __call__(self, eps_fn: EpsFn, noise: torch.Tensor, generator, on_step=None) -> torch.Tensor:
        patcher = self.video_model.patcher
        sigmas = comfy.samplers.calculate_sigmas(patcher.get_model_object("model_sampling"), self.scheduler,
                                                 self.steps)
        guider = ClipGuider(patcher, eps_fn, self.video_model)
        self.video_model.guider = guider

        def callback(step, x0, x, total_steps):
            if on_step is not None:
                on_step(step + 1, total_steps, x0)

        try:
            raw = guider.sample(noise.float(), torch.zeros_like(noise, dtype=torch.float32),
                                comfy.samplers.sampler_object(self.sampler_name), sigmas, callback=callback,
                                disable_pbar=True, seed=self.seed)
        finally:
            self.video_model.guider = None
        return raw.cpu() * self.video_model.config.latent_scaling_factor  # the library works in the scaled space
