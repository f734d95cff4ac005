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
from .model_injection import check_no_other_motion_model, vidiff_attachment


# The branches in DualCFGGuider's positions (negative, middle, positive), which the host reports to model patches as
# `transformer_options["cond_or_uncond"]` (0, 1, 2): IPAdapter_plus gives position 1 its unconditional image tokens
# and 0 and 2 its conditional ones, so a patch sees VIDiff's branches as it sees the core guider's.
BRANCH_POSITIONS = ("null", "video", "full")


def branch_slots(weights: dict[str, float], model_options: dict) -> list[str | None]:
    """Per position, the branch to evaluate (None: skipped, its weight is zero). A MODEL with cross-attention
    replacements (IP-Adapter) evaluates all three: such patches index per-position tensors by `cond_or_uncond`
    and fail on two chunks at positions (1, 2), as they do under DualCFGGuider with cfg_cond2_negative 1; a
    zero-weight branch adds nothing to the result."""
    patches = model_options.get("transformer_options", {}).get("patches_replace", {})
    every = bool(patches.get("attn2"))
    return [name if name in weights or every else None for name in BRANCH_POSITIONS]


def guided_prediction(inner_model, conds: dict, x, timestep, model_options: dict, weights: dict[str, float]):
    """The host's `calc_cond_batch` over VIDiff's branches (host conds by name) in DualCFGGuider's positions,
    combined with the library's weights."""
    slots = branch_slots(weights, model_options)
    out = comfy.samplers.calc_cond_batch(inner_model, [conds[n] if n else None for n in slots], x, timestep,
                                         model_options)
    return combine_branches({n: o for n, o in zip(slots, out) if n in weights}, weights)


def check_video_model(model, frames: int | None = None, input_name: str = "model") -> None:
    """A MODEL VIDiff can sample a source video with (`frames` of them in one clip), or an error naming what is
    missing."""
    if vidiff_attachment(model) is None:
        raise VIDiffError(f"{input_name}: this model has no temporal layers; pass it through VIDiff Apply Motion "
                          "Module (or load a VIDiff checkpoint with Load VIDiff Model)")
    check_no_other_motion_model(model, input_name)  # AnimateDiff-Evolved added after VIDiff's layers
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
        self.inner_set_conds(branches)  # all three: a cross-attention patch may need every position

    def predict_noise(self, x, timestep, model_options={}, seed=None):
        return guided_prediction(self.inner_model, self.conds, x, timestep, model_options, self.weights)

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
