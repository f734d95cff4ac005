"""VIDiff training (DESIGN §1.3): data for every task, stages t2v and v2v, an accelerate-based loop.

Entry point: `python -m vidiff_model.train --config CONFIG.yaml`.
"""

from .config import TrainConfig, load_config
from .errors import DataError, TrainConfigError

__all__ = ["DataError", "TrainConfig", "TrainConfigError", "load_config"]
