"""Host integration: what ties the library to ComfyUI (memory management, samplers, progress, previews,
model folders, latent layout). Only this package imports ComfyUI; the library never does."""

from __future__ import annotations

import os
from types import SimpleNamespace

import comfy.latent_formats
import comfy.model_management
import comfy.model_sampling
import comfy.samplers
import comfy.utils
import folder_paths
import latent_preview
import torch

from ..vidiff_model import VIDiffError
from ..vidiff_model.config import BETA_SCHEDULES
from ..vidiff_model.errors import LatentError
from ..vidiff_model.sampling import schedule_settings

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


# VIDiff's schedule name -> the host's `beta_schedule` (comfy.ldm...util.make_beta_schedule): the host's
# "linear" is SD-1.5's scaled_linear (linspace of square roots, squared); its "sqrt_linear" is AnimateDiff's
# linear betas (what AnimateDiff-Evolved also calls sqrt_linear). The numbers (betas, steps) are the library's
# (`vidiff_model.sampling.schedule_settings`): one definition of each schedule, named here as the host names it.
HOST_BETA_SCHEDULES = {"sd15": "linear", "animatediff": "sqrt_linear"}
assert set(HOST_BETA_SCHEDULES) == set(BETA_SCHEDULES)


def model_sampling(beta_schedule: str = "sd15", like=None):
    """The host's discrete sampling object for a VIDiff noise schedule (betas 0.00085..0.012), predicting what
    `like` (a model's current sampling object) predicts: ε, or v for a v-prediction model."""
    prediction = (comfy.model_sampling.V_PREDICTION if isinstance(like, comfy.model_sampling.V_PREDICTION)
                  else comfy.model_sampling.EPS)

    class ModelSampling(comfy.model_sampling.ModelSamplingDiscrete, prediction):
        pass
    library = schedule_settings(beta_schedule)  # betas 0.00085..0.012 over 1000 steps
    settings = {"beta_schedule": HOST_BETA_SCHEDULES[beta_schedule], "linear_start": library["beta_start"],
                "linear_end": library["beta_end"], "timesteps": library["num_train_timesteps"]}
    return ModelSampling(SimpleNamespace(sampling_settings=settings))


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


SCHEDULE_TOOLTIP = ("Noise schedule the samplers use (betas 0.00085 to 0.012). autoselect: the schedule the model was "
                    "trained with ({auto}). sd15: scaled_linear, SD-1.5 and InstructPix2Pix's (ComfyUI's \"linear\"). "
                    "animatediff: linear, what the AnimateDiff motion modules were trained with (ComfyUI's and "
                    "AnimateDiff-Evolved's \"sqrt_linear\").")


def model_path(folder: str, name: str, input_name: str) -> str:
    """Full path of a model file, or an error naming the input and the folder searched."""
    path = folder_paths.get_full_path(folder, name)
    if path is None:
        raise VIDiffError(f"{input_name}: {name} is not in models/{folder} "
                          f"({', '.join(folder_paths.get_folder_paths(folder))}); put the file there "
                          "and refresh, or pick one from the list")
    return path
