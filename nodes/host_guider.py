"""VIDiff's dual classifier-free guidance on the host's MODEL, as a host guider (`comfy.samplers.CFGGuider`), so
one clip samples with `SamplerCustomAdvanced` and any host NOISE / SAMPLER / SIGMAS, and the host does what it
does for every guider: loading, conditioning (ControlNets, hooks, areas), wrappers, model patches.

The three branches are host conds: (video, instruction), (video, ∅_T) and (∅_V, ∅_T); the video enters as the
InstructPix2Pix concat latent (unscaled, as the host's VAEEncode gives it), ∅_V as zeros. They are combined
with the library's weights (`GuidanceConfig.branch_weights`, `combine_branches`), on the clean estimates the
host's model returns (the weights add up to one, so this equals combining ε).
"""

from __future__ import annotations

import comfy.samplers
import torch

from ..vidiff_model.errors import LatentError, VIDiffError
from ..vidiff_model.guidance import GuidanceConfig, combine_branches
from ..vidiff_model.sampling import make_noise
from .model_injection import vidiff_attachment


def check_video_model(model, frames: int | None = None, input_name: str = "model") -> None:
    """A MODEL VIDiff can sample a source video with (`frames` of them in one clip), or an error naming what is
    missing."""
    if vidiff_attachment(model) is None:
        raise VIDiffError(f"{input_name}: this model has no temporal layers; pass it through VIDiff Apply Motion "
                          "Module (or load a VIDiff checkpoint with Load VIDiff Model)")
    unet = model.get_model_object("diffusion_model")
    if unet.in_channels != 8 or not hasattr(model.model, "concat_cond"):
        raise VIDiffError(f"{input_name}: a {unet.in_channels}-channel UNet cannot take a source video; load an "
                          "InstructPix2Pix checkpoint (8 input channels) or a VIDiff model")
    limit = vidiff_attachment(model).frame_limit
    if frames is not None and frames > limit:
        raise LatentError(f"source: {frames} frames is more than one clip ({limit} frames for this motion module); "
                          "use VIDiff Sampler with VIDiff Long Video settings to sample it in clips")


class VIDiffDualGuider(comfy.samplers.CFGGuider):
    """One clip: source frames (F, 4, H/8, W/8) raw, instruction and ∅_T tokens (1, T, 768), dual guidance."""

    def __init__(self, model, instruction: torch.Tensor, null: torch.Tensor, source: torch.Tensor,
                 guidance: GuidanceConfig):
        check_video_model(model, source.shape[0])
        super().__init__(model)
        self.source = source
        self.weights = guidance.branch_weights()
        video = {"concat_latent_image": source}
        branches = {"full": [[instruction, video]], "video": [[null, video]],
                    "null": [[null, {"concat_latent_image": None}]]}  # ∅_V: zeros
        self.inner_set_conds({name: branches[name] for name in self.weights})

    def predict_noise(self, x, timestep, model_options={}, seed=None):
        names = list(self.weights)
        out = comfy.samplers.calc_cond_batch(self.inner_model, [self.conds[n] for n in names], x, timestep,
                                             model_options)
        return combine_branches(dict(zip(names, out)), self.weights)

    def sample(self, noise, latent_image, *args, **kwargs):
        if tuple(latent_image.shape) != tuple(self.source.shape):
            raise LatentError(f"latent_image: {tuple(latent_image.shape)} differs from the source video "
                              f"{tuple(self.source.shape)}; connect the source LATENT (or an empty latent of its "
                              "frames and size)")
        return super().sample(noise, latent_image, *args, **kwargs)


class VIDiffNoise:
    """A host NOISE drawing VIDiff's noise: seeded `randn((1, 4, F, h, w))` on the CPU, as VIDiff Sampler and the
    library draw it, handed to the host in its layout (frames are the batch)."""

    def __init__(self, seed: int):
        self.seed = seed

    def generate_noise(self, input_latent: dict) -> torch.Tensor:
        samples = input_latent["samples"]  # (F, 4, h, w)
        f, c, h, w = samples.shape
        return make_noise((1, c, f, h, w), self.seed)[0].transpose(0, 1).contiguous()  # (F, 4, h, w)
