"""VIDiff: one diffusion model that edits and restores videos from an instruction.

The host-independent library of the pack: it never imports ComfyUI, so training, evaluation and the
command line work without it. The names below are imported on first use (PEP 562), so light subpackages
such as the API client (`python -m vidiff_model.remote`) start without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> submodule that defines it
_EXPORTS = {
    "checkpoints": ("LoadReport", "build_vidiff_from_parts", "identify", "load_vidiff", "save_vidiff"),
    "config": ("ImageInstructionConfig", "VideoUNetConfig", "VIDiffConfig", "sd15_config", "tiny_config"),
    "errors": ("CheckpointError", "InstructionError", "LatentError", "VIDiffError"),
    "guidance": ("GuidanceConfig",),
    "long_video": ("LongVideoOptions", "plan_clips", "seam_report"),
    "model": ("VIDiffModel",),
    "pipeline": ("StepInfo", "VideoResult", "translate_video"),
    "sampling": ("SAMPLERS", "SCHEDULES", "DiffusersSampler"),
}
_SOURCE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_SOURCE)


def __getattr__(name: str) -> Any:
    module = _SOURCE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static analysers and IDEs see the eager imports
    from .checkpoints import LoadReport, build_vidiff_from_parts, identify, load_vidiff, save_vidiff
    from .config import ImageInstructionConfig, VideoUNetConfig, VIDiffConfig, sd15_config, tiny_config
    from .errors import CheckpointError, InstructionError, LatentError, VIDiffError
    from .guidance import GuidanceConfig
    from .long_video import LongVideoOptions, plan_clips, seam_report
    from .model import VIDiffModel
    from .pipeline import StepInfo, VideoResult, translate_video
    from .sampling import SAMPLERS, SCHEDULES, DiffusersSampler
