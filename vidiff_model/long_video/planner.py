"""Where the clips of a long video go: pure functions, no tensors.

A video of F frames is cut into clips of `clip_length` frames; each clip after the first shares
`overlap` frames with the one before it (its first frames are the previous clip's last ones). The
last clip is aligned to the end of the video, so it may share more than `overlap` frames. A video no
longer than one clip is one clip.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import VIDiffError


@dataclass(frozen=True)
class Clip:
    """Frames [start, end) of the video; the first `overlap` of them are shared with the previous clip.

    The output takes frames [start + overlap, end) from this clip: shared frames come from the
    previous clip, so every frame of the video is written exactly once.
    """

    start: int
    end: int
    overlap: int

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def new_start(self) -> int:
        """First frame this clip adds to the output."""
        return self.start + self.overlap


def check_clip_settings(clip_length: int, overlap: int) -> None:
    """Raise VIDiffError naming the setting unless 1 <= clip_length and 0 <= overlap < clip_length."""
    if clip_length < 1:
        raise VIDiffError(f"clip_length: {clip_length} frames; a clip needs at least 1 frame")
    if overlap < 0:
        raise VIDiffError(f"overlap: {overlap} frames; use 0 or more")
    if overlap >= clip_length:
        raise VIDiffError(f"overlap: {overlap} frames is not less than clip_length ({clip_length}); "
                          f"each clip must add new frames, so use an overlap of at most {clip_length - 1}")


def plan_clips(num_frames: int, clip_length: int, overlap: int, done: int = 0) -> list[Clip]:
    """Clips covering frames done..num_frames-1 (see the module docstring).

    `done`: the first frames are already translated (a video continued in parts: a meta batch, a segment). The
    first clip then shares `overlap` of them, or more where the frames left are fewer than a clip (it ends with
    the video, as the last clip of one run does), so parts cut after clip ends plan as one run would.
    """
    check_clip_settings(clip_length, overlap)
    if num_frames < 1:
        raise VIDiffError(f"frames: the video has {num_frames} frames; it needs at least 1")
    assert 0 <= done < num_frames, f"done frames {done} must leave at least one of {num_frames} frames to translate"
    if num_frames <= clip_length:
        return [Clip(0, num_frames, done)]
    stride = clip_length - overlap
    start = max(0, min(done - overlap, num_frames - clip_length)) if done else 0
    clips = [Clip(start, start + clip_length, done - start)]
    while clips[-1].end < num_frames:
        start = min(clips[-1].start + stride, num_frames - clip_length)  # the last clip ends with the video
        clips.append(Clip(start, start + clip_length, clips[-1].end - start))
    return clips


def window_weights(length: int, kind: str) -> list[float]:
    """Per-frame blending weights of one sliding window (`kind`: one of WEIGHTINGS)."""
    if kind not in WEIGHTINGS:
        raise VIDiffError(f"weighting: unknown {kind!r}; choose one of {sorted(WEIGHTINGS)}")
    return WEIGHTINGS[kind](length)


def _flat(length: int) -> list[float]:
    return [1.0] * length


def _pyramid(length: int) -> list[float]:
    # 1, 2, ..., peak, ..., 2, 1: frames near a window's edge count least where windows overlap.
    return [float(min(i + 1, length - i)) for i in range(length)]


WEIGHTINGS = {"flat": _flat, "pyramid": _pyramid}


CONTINUATION_TEMPLATE = "Based on the first {n} frames, {instruction}"


def continuation_instruction(instruction: str, n: int) -> str:
    """The instruction for a clip that continues from `n` given frames (VIDiff's long-video training)."""
    text = instruction.strip()
    if text[1:2].islower():  # "Convert the ..." -> "convert the ...", but keep "CLIP", "X-ray" as they are
        text = text[:1].lower() + text[1:]
    return CONTINUATION_TEMPLATE.format(n=n, instruction=text)
