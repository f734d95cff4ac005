"""VIDiff: one diffusion model that edits and restores videos from an instruction.

The host-independent library of the pack: it never imports ComfyUI, so training, evaluation and the
command line work without it.
"""

from .checkpoints import LoadReport, build_vidiff_from_parts, identify, load_vidiff, save_vidiff
from .config import ImageInstructionConfig, VideoUNetConfig, VIDiffConfig, sd15_config, tiny_config
from .errors import CheckpointError, InstructionError, LatentError, VIDiffError
from .model import VIDiffModel

__all__ = [
    "CheckpointError", "ImageInstructionConfig", "InstructionError", "LatentError", "LoadReport",
    "VIDiffConfig", "VIDiffError", "VIDiffModel", "VideoUNetConfig", "build_vidiff_from_parts", "identify",
    "load_vidiff", "save_vidiff", "sd15_config", "tiny_config",
]
