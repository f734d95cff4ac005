"""Host integration: what ties the library to ComfyUI (memory management, samplers, progress, previews,
model folders, latent layout). Only this package imports ComfyUI; the library never does."""

from __future__ import annotations

import os
from types import SimpleNamespace

import comfy.latent_formats
import comfy.model_management
import comfy.model_patcher
import comfy.model_sampling
import comfy.samplers
import comfy.utils
import folder_paths
import latent_preview
import torch

from ..vidiff_model import VIDiffModel
from ..vidiff_model.errors import LatentError

VIDIFF_FOLDER = "vidiff"
MOTION_FOLDER = "animatediff_models"
METRICS_FOLDER = "vidiff_metrics"  # backbones of the learned metrics (LPIPS AlexNet + heads, Inception-v3)
WEIGHT_EXTENSIONS = {".safetensors", ".ckpt", ".pt", ".pth", ".bin"}
# Samplers that post-process classifier-free guidance inside the host's CFG function (the *_cfg_pp family)
# need the host's own guider; VIDiff's dual guidance replaces it, so they are not offered.
SAMPLER_NAMES = [s for s in comfy.samplers.KSampler.SAMPLERS if not s.endswith("cfg_pp")]
SCHEDULER_NAMES = list(comfy.samplers.KSampler.SCHEDULERS)


def register_model_folders() -> None:
    """`models/vidiff` for VIDiff checkpoints, `models/vidiff_metrics` for the learned metrics' weights;
    `models/animatediff_models` unless another pack has it."""
    for name, exts in ((VIDIFF_FOLDER, {".safetensors"}), (MOTION_FOLDER, WEIGHT_EXTENSIONS),
                       (METRICS_FOLDER, WEIGHT_EXTENSIONS)):
        if name in folder_paths.folder_names_and_paths:
            folder_paths.folder_names_and_paths[name][1].update(exts)  # e.g. created by extra_model_paths.yaml
        folder_paths.add_model_folder_path(name, os.path.join(folder_paths.models_dir, name), is_default=True)
        folder_paths.folder_names_and_paths[name][1].update(exts)


class _PatcherRoot(torch.nn.Module):
    """What the host's ModelPatcher manages: it sets bookkeeping attributes (device, lowvram flags) on
    the module it is given, so it gets this holder rather than the library model."""

    def __init__(self, model: VIDiffModel):
        super().__init__()
        self.vidiff = model


class HostVIDiff:
    """The VIDIFF_MODEL value passed between nodes: the library model inside a host ModelPatcher."""

    def __init__(self, model: VIDiffModel, name: str):
        self.name = name
        self.model = model
        self.patcher = comfy.model_patcher.ModelPatcher(
            _PatcherRoot(model), load_device=comfy.model_management.get_torch_device(),
            offload_device=comfy.model_management.unet_offload_device())

    def load(self) -> VIDiffModel:
        """Ask the host's memory manager to put the model on its device (it may offload others)."""
        comfy.model_management.load_models_gpu([self.patcher])
        return self.model


def weight_dtype(choice: str, parameters: int) -> torch.dtype:
    """`auto` asks the host what suits its device; otherwise the named dtype."""
    if choice == "auto":
        return comfy.model_management.unet_dtype(model_params=parameters,
                                                  supported_dtypes=[torch.float16, torch.bfloat16, torch.float32])
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[choice]


def latent_to_video(latent: dict, name: str = "source") -> torch.Tensor:
    """Host LATENT {"samples": [F, C, H, W]} (frames are the batch) -> (1, C, F, H, W)."""
    samples = latent.get("samples") if isinstance(latent, dict) else None
    if not isinstance(samples, torch.Tensor) or samples.ndim != 4:
        shape = tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__
        raise LatentError(f"{name}: expected a LATENT of video frames [frames, 4, height/8, width/8] from VAEEncode, "
                          f"got {shape}")
    if samples.shape[0] == 0:
        raise LatentError(f"{name}: the video has 0 frames; load a video with at least one frame")
    return samples.permute(1, 0, 2, 3).unsqueeze(0)


def video_to_latent(video: torch.Tensor) -> dict:
    """(1, C, F, H, W) -> host LATENT {"samples": [F, C, H, W]}."""
    return {"samples": video[0].permute(1, 0, 2, 3).contiguous().cpu()}


class _HostModelWrap:
    """What the host's KSAMPLER calls: (x, sigma) -> denoised x0, around a library eps_fn."""

    def __init__(self, eps_fn, model_sampling):
        self.eps_fn = eps_fn
        # the host's samplers read the schedule as model_wrap.inner_model.model_sampling, and the SDE ones
        # (given the wrap as `inner_model`) through .model_patcher.get_model_object("model_sampling")
        self.inner_model = SimpleNamespace(model_sampling=model_sampling)
        self.model_patcher = SimpleNamespace(get_model_object={"model_sampling": model_sampling}.__getitem__)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **kwargs) -> torch.Tensor:
        ms = self.inner_model.model_sampling
        x_in = ms.calculate_input(sigma, x)  # x / sqrt(σ² + 1): the variance-preserving input
        eps = self.eps_fn(x_in, ms.timestep(sigma)[0], float(sigma.flatten()[0]))
        return ms.calculate_denoised(sigma, eps.to(x.dtype), x)


# VIDiff's schedule name -> the host's `beta_schedule` (comfy.ldm...util.make_beta_schedule): the host's
# "linear" is SD-1.5's scaled_linear (linspace of square roots, squared); its "sqrt_linear" is AnimateDiff's
# linear betas (what AnimateDiff-Evolved also calls sqrt_linear).
HOST_BETA_SCHEDULES = {"sd15": "linear", "animatediff": "sqrt_linear"}


def model_sampling(beta_schedule: str = "sd15", like=None):
    """The host's discrete sampling object for a VIDiff noise schedule (betas 0.00085..0.012), predicting what
    `like` (a model's current sampling object) predicts: ε, or v for a v-prediction model."""
    prediction = (comfy.model_sampling.V_PREDICTION if isinstance(like, comfy.model_sampling.V_PREDICTION)
                  else comfy.model_sampling.EPS)

    class ModelSampling(comfy.model_sampling.ModelSamplingDiscrete, prediction):
        pass
    settings = {"beta_schedule": HOST_BETA_SCHEDULES[beta_schedule], "linear_start": 0.00085, "linear_end": 0.012}
    return ModelSampling(SimpleNamespace(sampling_settings=settings))


class HostSampler:
    """`ClipSampler` on the host's own samplers and schedulers (comfy.samplers), on the model's noise schedule."""

    def __init__(self, sampler_name: str, scheduler: str, steps: int, seed: int, beta_schedule: str = "sd15"):
        self.sampler_name, self.scheduler, self.steps, self.seed = sampler_name, scheduler, steps, seed
        self.model_sampling = model_sampling(beta_schedule)

    def __call__(self, eps_fn, noise, generator, on_step=None):
        sigmas = comfy.samplers.calculate_sigmas(self.model_sampling, self.scheduler, self.steps).to(noise.device)
        sampler = comfy.samplers.sampler_object(self.sampler_name)

        def callback(step, x0, x, total_steps):
            if on_step is not None:
                on_step(step + 1, total_steps, x0)

        return sampler.sample(_HostModelWrap(eps_fn, self.model_sampling), sigmas,
                              {"seed": self.seed, "model_options": {}}, callback, noise.float(),
                              latent_image=torch.zeros_like(noise, dtype=torch.float32), disable_pbar=True)


class Progress:
    """Progress bar over all clips and steps, with latent previews of the middle frame when enabled."""

    def __init__(self, total: int, node_id: str | None, device: torch.device):
        self.pbar = comfy.utils.ProgressBar(total, node_id=node_id)
        self.previewer = latent_preview.get_previewer(device, comfy.latent_formats.SD15())
        self.node_id = node_id

    def __call__(self, info) -> None:
        done = info.clip * info.steps + info.step
        preview = None
        if self.previewer is not None:
            frame = info.denoised[:, :, info.denoised.shape[2] // 2]  # (B, 4, H, W), scaled latent
            preview = self.previewer.decode_latent_to_preview_image("JPEG", frame.float())
        self.pbar.update_absolute(done, info.clips * info.steps, preview)
        send_progress_event(self.node_id, info)


def send_progress_event(node_id: str | None, info) -> None:
    """A websocket message the frontend extension shows on the node: which clip and step."""
    try:
        from server import PromptServer
    except ImportError:  # not running inside the server (e.g. a script using the nodes)
        return
    if PromptServer.instance is not None and node_id is not None:
        PromptServer.instance.send_sync("vidiff.progress", {
            "node": node_id, "clip": info.clip + 1, "clips": info.clips, "step": info.step, "steps": info.steps,
            "frames": info.frames})


def interrupt_check() -> None:
    """Raises the host's interruption exception when the user pressed Cancel."""
    comfy.model_management.throw_exception_if_processing_interrupted()
