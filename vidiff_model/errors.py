"""Errors a user can cause. Their messages are shown as they are (in ComfyUI, on the node), so each
names the input or file at fault and says what would be right."""


class VIDiffError(ValueError):
    """Base class: a bad input or file, explained in one line."""


class CheckpointError(VIDiffError):
    """A weight file that is missing, corrupt, unsafe, or of the wrong kind for where it was used."""

    def __init__(self, path, message: str):
        self.path = str(path)
        super().__init__(f"{self.path}: {message}")


class InstructionError(VIDiffError):
    """An instruction (text hidden states or image embedding) of the wrong shape for the model."""


class LatentError(VIDiffError):
    """A latent video of the wrong shape or family for the model."""
