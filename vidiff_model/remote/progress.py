"""A progress line on stderr while a prompt runs: the node at work, and for VIDiff samplers clip k/n and step s/S
(from the pack's `vidiff.progress` websocket event). Redrawn in place on a terminal; on a pipe or log file one
line per clip, node or outcome instead of one per step."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 24


class ProgressLine:
    """What the client reports while it follows a prompt; `enabled=False` is silent."""

    def __init__(self, label: str = "", stream: TextIO | None = None, enabled: bool = True):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.label = f"{label}: " if label else ""
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self._last = ""  # the last milestone printed off a terminal
        self._width = 0
        self.status = ""  # shown before the node's progress, e.g. "frames 48/200, ETA 1m20s" (a long video's)

    def _show(self, text: str, milestone: str | None = None) -> None:
        if not self.enabled:
            return
        status = self.current_status()
        line = f"{self.label}{status + ' | ' if status else ''}{text}  {time.monotonic() - self.start:5.1f} s"
        if self.tty:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        elif milestone is not None and milestone != self._last:
            self._last = milestone
            self.stream.write(line + "\n")
        self.stream.flush()

    def current_status(self) -> str:
        """What goes before the node's progress (subclasses compute it as the prompt advances)."""
        return self.status

    def note(self, text: str) -> None:
        """A line of its own (e.g. a finished segment), also off a terminal."""
        if not self.enabled:
            return
        if self.tty:
            text = "\r" + text + " " * max(0, self._width - len(text))
            self._width = 0
        self.stream.write(text + "\n")
        self.stream.flush()

    def queued(self, remaining: int) -> None:
        """The server's queue length while this prompt waits (shown when others are ahead of it)."""
        if remaining > 1:
            self._show(f"waiting: {remaining} prompts in the server's queue, this one included", milestone="queued")

    def node(self, name: str) -> None:
        self._show(f"running {name}", milestone=f"node {name}")

    def steps(self, name: str, value: int, maximum: int) -> None:
        """ComfyUI's own `progress` event (any node that reports steps)."""
        self._show(f"{name} {_bar(value, maximum)} {value}/{maximum}",
                   milestone=f"node {name}" if value < maximum else f"node {name} done")

    def clip_step(self, clip: int, clips: int, step: int, steps: int) -> None:
        """The pack's `vidiff.progress` event: clip k of n, step s of S."""
        done = (clip - 1) * steps + step
        self._show(f"clip {clip}/{clips} step {step}/{steps} {_bar(done, clips * steps)}",
                   milestone=f"clip {clip}/{clips}" if step < steps else f"clip {clip}/{clips} done")

    def finish(self, outcome: str) -> None:
        """Ends the line: `outcome` is e.g. "done" or "failed"."""
        if not self.enabled:
            return
        text = f"{self.label}{outcome} in {time.monotonic() - self.start:.1f} s"
        if self.tty:
            text = "\r" + text + " " * max(0, self._width - len(text))
        self.stream.write(text + "\n")
        self.stream.flush()
        self._width = 0


def _bar(value: int, maximum: int) -> str:
    filled = round(BAR_WIDTH * value / maximum) if maximum > 0 else 0
    return "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]"
