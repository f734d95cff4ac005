"""A client for running the pack's API-format workflows on a ComfyUI server over HTTP and its websocket:
upload a video, set inputs, queue, follow progress, download the outputs; batches resumable through a manifest.
Standard library HTTP plus `websocket-client`; it never imports ComfyUI or torch.

    python -m vidiff_model.remote run --server http://127.0.0.1:8188 --workflow workflows/api/dehaze.json \\
        --video hazy.mp4 --set VIDiffSampler.steps=20 --out results/
"""

from .batch import BatchItem, Manifest, run_batch, summary_table
from .client import ComfyClient, RunResult
from .errors import PromptFailed, RemoteError, ServerUnavailable, UsageError
from .workflow import Assignment, apply_assignments, check_video, load_workflow, parse_assignment, video_node

__all__ = [
    "Assignment", "BatchItem", "ComfyClient", "Manifest", "PromptFailed", "RemoteError", "RunResult",
    "ServerUnavailable", "UsageError", "apply_assignments", "check_video", "load_workflow", "parse_assignment",
    "run_batch", "summary_table", "video_node",
]
