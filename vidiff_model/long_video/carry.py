"""A long video translated in parts (VideoHelperSuite's meta batches, the client's segments): what one part hands
the next, and the noise stream that makes the cut invisible to the sampler.

One run draws its noise for the whole video at once, so it depends on the video's length. A video in parts draws
it per frame from (seed, frame index) instead: frame i gets the same noise whatever the parts are. With the last
translated frames carried over (`Carry`), the next part plans its clips as if the earlier frames were done in the
same run (`plan_clips(..., done=)`): where a part ends at a clip's end, the parts give exactly what one run over
the whole video with the same noise stream gives; elsewhere the part's first clip shares more frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import LatentError

_MASK = (1 << 64) - 1


def _frame_seed(seed: int, frame: int) -> int:
    """A 64-bit seed for one frame (splitmix64 of seed and index): seeds 1 and 2 share no frames' noise."""
    z = (int(seed) * 0x9E3779B97F4A7C15 + int(frame) + 1) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def frame_noise(seed: int, first_frame: int, frames: int, shape: tuple[int, int, int, int],
                device: torch.device | str = "cpu") -> torch.Tensor:
    """Noise (B, C, frames, H, W) for frames first_frame.. of a video, each frame drawn from (seed, index) alone.

    shape: (B, C, H, W) of one frame."""
    out = torch.empty(shape[0], shape[1], frames, shape[2], shape[3])
    for i in range(frames):
        g = torch.Generator("cpu").manual_seed(_frame_seed(seed, first_frame + i))
        out[:, :, i] = torch.randn(shape, generator=g, dtype=torch.float32)
    return out.to(device)


def carried_frames(clip_length: int) -> int:
    """Frames a part hands on: clip_length − 1, so that even a one-frame part can sit at the end of a full clip."""
    return max(clip_length - 1, 0)


@dataclass
class Carry:
    """The end of what was translated so far.

    frames_done: frames of the video already translated (the next part's first frame is this index).
    results: (B, 4, c, h, w) raw latents: the translations of the last c of them (c may be 0).
    source: (B, 4, c, h, w) raw latents: the source of those same frames (overlap_guided samples them again).
    """

    frames_done: int = 0
    results: torch.Tensor | None = None
    source: torch.Tensor | None = None

    @property
    def frames(self) -> int:
        return 0 if self.results is None else self.results.shape[2]

    def check_part(self, part: torch.Tensor, name: str = "source") -> None:
        """Raise LatentError naming `name` unless `part` (B, 4, F, h, w) continues this carry's frames."""
        if self.results is None:
            return
        had, has = tuple(self.results.shape[-2:]), tuple(part.shape[-2:])
        if had != has:
            raise LatentError(
                f"{name}: the frame size changed from {had[1] * 8}×{had[0] * 8} to {has[1] * 8}×{has[0] * 8} pixels "
                f"(latent {had[1]}×{had[0]} to {has[1]}×{has[0]}) after frame {self.frames_done}; a video "
                f"translated in parts keeps one frame size: resize every frame to the same size")
        if part.shape[0] != self.results.shape[0]:
            raise LatentError(f"{name}: {part.shape[0]} videos in the batch, the earlier part had "
                              f"{self.results.shape[0]}")

    def after(self, source: torch.Tensor, results: torch.Tensor, new_frames: int, keep: int) -> "Carry":
        """The carry once `new_frames` more are done; `source`/`results` (B, 4, f, h, w) end with the last frames
        translated; the last `keep` frames are kept."""
        keep = min(keep, results.shape[2])
        tail = slice(results.shape[2] - keep, None)
        return Carry(self.frames_done + new_frames, results[:, :, tail].detach().cpu().clone(),
                     source[:, :, tail].detach().cpu().clone())
