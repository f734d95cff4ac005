"""Reading and writing weights: the project's own format and the formats users already have."""

from .detect import FileKind, identify
from .from_parts import build_vidiff_from_parts
from .io import TensorFile
from .native import load_vidiff, read_config, save_vidiff
from .state import LoadReport

__all__ = ["FileKind", "LoadReport", "TensorFile", "build_vidiff_from_parts", "identify", "load_vidiff",
           "read_config", "save_vidiff"]
