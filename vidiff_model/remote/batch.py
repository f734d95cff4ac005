"""Batches: one prompt per video of a folder, resumable. A manifest in the output folder (JSON lines, one appended
and synced per finished video) records what finished with which files; a rerun skips those, so a crash of the
client or a restart of the server loses nothing that was finished."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .client import ComfyClient
from .errors import PromptFailed, RemoteError, ServerUnavailable, UsageError
from .progress import ProgressLine
from .workflow import Prompt, check_video, is_video_name

MANIFEST = "vidiff_batch.jsonl"


@dataclass
class BatchItem:
    """One video of a batch and what became of it: done, skipped (done before), failed, or not run."""

    video: str
    status: str = "not run"
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)  # relative to the output folder
    error: str = ""
    prompt_id: str = ""
    settings: str = ""  # fingerprint of workflow and --set values


def fingerprint(prompt: Prompt) -> str:
    """A short hash of the prompt before the video is set: a changed workflow or --set is a different batch."""
    return hashlib.sha256(json.dumps(prompt, sort_keys=True).encode()).hexdigest()[:16]


class Manifest:
    """out_dir/vidiff_batch.jsonl: the finished videos (and failures, for the record), appended as they end."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / MANIFEST

    def finished(self, settings: str, out_dir: Path) -> dict[str, BatchItem]:
        """Videos recorded done under these settings whose output files are all still there."""
        done: dict[str, BatchItem] = {}
        if not self.path.is_file():
            return done
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                item = BatchItem(**json.loads(line))
            except (json.JSONDecodeError, TypeError):
                continue  # a line cut short by a crash
            if item.settings != settings:
                continue
            if item.status == "done" and all((out_dir / f).is_file() for f in item.outputs):
                done[item.video] = item
            else:
                done.pop(item.video, None)
        return done

    def record(self, item: BatchItem) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(item)) + "\n")
            f.flush()
            os.fsync(f.fileno())


def list_videos(folder: Path, warn: Callable[[str], None]) -> list[Path]:
    """The folder's video files (by extension), sorted; other files are named in a warning and left out."""
    if not folder.is_dir():
        raise UsageError(f"--videos {folder}: no such folder")
    videos = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        if is_video_name(path):
            videos.append(path)
        elif path.name != MANIFEST:
            warn(f"skipping {path}: not a video")
    if not videos:
        raise UsageError(f"--videos {folder}: no video files in it")
    return videos


def run_batch(client: ComfyClient, prompt: Prompt, video_node: str, videos: list[Path], out_dir: Path,
              quiet: bool = False, timeout: float | None = None) -> list[BatchItem]:
    """Runs `prompt` once per video (set into `video_node`), skipping videos the manifest has as done.

    Stops at a lost server (the rest stay "not run"; rerun the batch), goes on after a failed prompt.
    """
    manifest, settings = Manifest(out_dir), fingerprint(prompt)
    finished = manifest.finished(settings, out_dir)
    dirs = _output_dirs(videos)
    items = [BatchItem(v.name, settings=settings) for v in videos]
    for i, (video, item) in enumerate(zip(videos, items)):
        if video.name in finished:
            items[i] = finished[video.name]
            items[i].status = "skipped"
            continue
        progress = ProgressLine(f"[{i + 1}/{len(videos)}] {video.name}", enabled=not quiet)
        start = time.monotonic()
        try:
            check_video(video)
            job = json.loads(json.dumps(prompt))
            job[video_node]["inputs"]["file"] = client.upload(video)
            result = client.run(job, out_dir / dirs[video.name], progress, timeout)
        except ServerUnavailable as e:
            item.error = str(e)
            progress.finish(f"stopped: {e}")
            break
        except (PromptFailed, UsageError, RemoteError) as e:
            item.status, item.error, item.seconds = "failed", str(e), time.monotonic() - start
            item.prompt_id = getattr(e, "prompt_id", None) or ""
            progress.finish(f"failed: {e}")
            manifest.record(item)
            continue
        item.status, item.seconds, item.prompt_id = "done", result.seconds, result.prompt_id
        item.outputs = [str(f.relative_to(out_dir)) for f in result.files]
        manifest.record(item)
        progress.finish("done")
    return items


def _output_dirs(videos: list[Path]) -> dict[str, str]:
    """Each video's folder under the output folder: its stem, or its full name where stems clash."""
    stems = [v.stem for v in videos]
    return {v.name: v.stem if stems.count(v.stem) == 1 else v.name.replace(".", "_") for v in videos}


def summary_table(items: list[BatchItem]) -> str:
    """A plain-text table: video, status, seconds, outputs (or the error)."""
    rows = [("video", "status", "seconds", "outputs")]
    for it in items:
        detail = ", ".join(it.outputs) if it.status in ("done", "skipped") else it.error
        rows.append((it.video, it.status, f"{it.seconds:.1f}" if it.seconds else "-", detail or "-"))
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    lines = ["  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].rjust(widths[2]), r[3]]) for r in rows]
    counts = {s: sum(it.status == s for it in items) for s in ("done", "skipped", "failed", "not run")}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" of {len(items)} videos")
    return "\n".join(lines)


def warn(text: str) -> None:
    print(text, file=sys.stderr)
