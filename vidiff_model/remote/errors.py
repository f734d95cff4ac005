"""Errors of the API client. Each is one line a user can act on; the command line prints it without a
traceback and exits with the error's code."""

from __future__ import annotations


class RemoteError(Exception):
    """Base class: a failure explained in one line. `exit_code` is what the command line returns."""

    exit_code = 1


class UsageError(RemoteError):
    """A bad argument or input file: a UI-format workflow, an unknown node or input, a file that is not a video."""

    exit_code = 2


class ServerUnavailable(RemoteError):
    """No ComfyUI server at the address, or the connection to it was lost."""

    exit_code = 3


class PromptFailed(RemoteError):
    """The server rejected the prompt, a node raised an error, or the run was interrupted or deleted."""

    exit_code = 1

    def __init__(self, message: str, prompt_id: str | None = None, status: str = "error"):
        super().__init__(message)
        self.prompt_id = prompt_id
        self.status = status  # "rejected" | "error" | "interrupted" | "deleted"
