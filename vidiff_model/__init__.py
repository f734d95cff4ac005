"""VIDiff: one diffusion model that edits and restores videos from an instruction.

The host-independent library of the pack: it never imports ComfyUI, so training, evaluation and the
command line work without it.
"""

from .checkpoints import LoadReport, build_vidiff_from_parts, identify, load_vidiff, save_vidiff
from .config import ImageInstructionConfig, VideoUNetConfig, VIDiffConfig, sd15_config, tiny_config
from .errors import CheckpointError, InstructionError, LatentError, VIDiffError
from .guidance import GuidanceConfig
from .long_video import LongVideoOptions, plan_clips, seam_report
from .model import VIDiffModel
from .pipeline import StepInfo, VideoResult, translate_video
from .sampling import SAMPLERS, SCHEDULES, DiffusersSampler

__all__ = [
    "SAMPLERS", "SCHEDULES", "CheckpointError", "DiffusersSampler", "GuidanceConfig", "ImageInstructionConfig",
    "InstructionError", "LatentError", "LoadReport", "LongVideoOptions", "StepInfo", "VIDiffConfig", "VIDiffError",
    "VIDiffModel", "VideoResult", "VideoUNetConfig", "build_vidiff_from_parts", "identify", "load_vidiff",
    "plan_clips", "save_vidiff", "sd15_config", "seam_report", "tiny_config", "translate_video",
]
