"""Training errors: bad data and bad configs, each naming the path or key at fault."""

from __future__ import annotations

from ..errors import VIDiffError


class DataError(VIDiffError):
    """A video, frame folder, mask folder or list file that cannot be used as training data."""

    def __init__(self, path=None, message: str = ""):
        # message= alone: a message that already names its file (an error passed on from a loader worker)
        self.path = str(path) if path is not None else ""
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class TrainConfigError(VIDiffError):
    """A training config with a missing, unknown or invalid setting."""
