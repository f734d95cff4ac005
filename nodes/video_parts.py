"""VIDiff Sampler on a video that arrives in parts: VideoHelperSuite's Meta Batch Manager, or VIDiff Continue From.

Under a Meta Batch Manager (`VHS_BatchManager`) the server runs the whole workflow once per batch of
`frames_per_batch` frames (VideoHelperSuite re-queues it, bumping the manager's `requeue` input, until its loader
reports the video closed). Every node runs again, so the long-video chain (the last translated frames, the noise
stream's position, the clip plan's) is kept here between runs: keyed by the manager object (weakly: it goes when
the server drops the node) and the sampler's node id, checked against the batch index (`requeue`), and dropped
after the last batch, when VIDiff is cancelled or fails, and when the manager starts a new video.

VIDiff Continue From is the same carry, handed in explicitly (the client's segments of a long video): the
sampler's source starts with `frames` frames already translated (the last `frames` of `previous`).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..vidiff_model.errors import LatentError, VIDiffError
from ..vidiff_model.long_video.carry import Carry

MANAGER = "VHS_BatchManager"


@dataclass(frozen=True)
class Continuation:
    """VIDiff Continue From's output: the source's first `frames` frames are done (the last `frames` of
    `previous`, a LATENT); the source's first frame is frame `first_frame` of the whole video."""

    frames: int
    first_frame: int
    previous: dict | None


@dataclass
class _BatchState:
    batch: int  # the meta batch this carry comes after
    carry: Carry


_STATES: "weakref.WeakKeyDictionary[object, dict[str, _BatchState]]" = weakref.WeakKeyDictionary()


def _is_link(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)


def _title(prompt: dict, node_id: str) -> str:
    node = prompt.get(node_id, {})
    return f"{node.get('_meta', {}).get('title') or node.get('class_type', '?')} (node {node_id})"


def _upstream_loaders(prompt: dict, node_id: str, name: str) -> dict[str, str | None]:
    """Nodes above input `name` of `node_id` that take a meta_batch: {node id: the manager it is linked to}."""
    found: dict[str, str | None] = {}
    seen: set[str] = set()
    todo = [prompt[node_id]["inputs"].get(name)]
    while todo:
        link = todo.pop()
        if not _is_link(link) or link[0] in seen or link[0] not in prompt:
            continue
        seen.add(link[0])
        inputs = prompt[link[0]].get("inputs", {})
        if prompt[link[0]].get("class_type") != MANAGER and "meta_batch" in inputs:
            found[link[0]] = inputs["meta_batch"][0] if _is_link(inputs["meta_batch"]) else None
        todo.extend(v for v in inputs.values() if _is_link(v))
    return found


def check_wiring(prompt: dict | None, node_id: str | None, meta_batch, long_video, continuation) -> None:
    """Raise VIDiffError naming the input when a Meta Batch is wired so that batches could not continue."""
    if not prompt or node_id not in prompt:
        return  # not run by the server (a script calling the node)
    loaders = _upstream_loaders(prompt, node_id, "source")
    managed = {loader: manager for loader, manager in loaders.items() if manager is not None}
    if meta_batch is None:
        if managed:
            loader, manager = next(iter(managed.items()))
            raise VIDiffError(
                f"meta_batch: the source comes from {_title(prompt, loader)}, which Meta Batch Manager "
                f"{_title(prompt, manager)} hands out a batch at a time; link that manager's meta_batch into VIDiff "
                f"Sampler too, so each batch continues the video from the one before (unlinked, every batch would "
                f"start a new video)")
        return
    manager = getattr(meta_batch, "unique_id", None)
    if manager not in managed.values():
        via = next(iter(loaders), None)
        where = (f"its loader {_title(prompt, via)} takes another manager" if via else
                 "it does not come from a VideoHelperSuite loader, so every batch would get the whole video")
        raise VIDiffError(
            f"source: VIDiff Sampler takes meta_batch from {_title(prompt, str(manager))}, but {where}; feed the "
            f"source from a VideoHelperSuite Load Video whose meta_batch is linked to the same manager")
    if continuation is not None:
        raise VIDiffError("continue_from: a Meta Batch Manager already carries the video from batch to batch; "
                          "link meta_batch or continue_from, not both")
    if long_video is None:
        raise VIDiffError("long_video: under a Meta Batch Manager, connect VIDiff Long Video (mode autoregressive "
                          "or overlap_guided) so that each batch continues from the frames before it")
    frames_per_batch = int(getattr(meta_batch, "frames_per_batch", 0))
    if frames_per_batch < long_video.overlap:
        raise VIDiffError(
            f"frames_per_batch: Meta Batch Manager {_title(prompt, str(manager))} hands out {frames_per_batch} frames "
            f"per batch, fewer than the long-video overlap ({long_video.overlap}); set frames_per_batch to at "
            f"least {long_video.overlap}; best is overlap plus a multiple of clip_length − overlap "
            f"(e.g. {long_video.clip_length + 2 * (long_video.clip_length - long_video.overlap)}): batches then end "
            f"where clips end, as in one run")


def _batch_index(meta_batch, prompt: dict) -> int:
    manager = prompt.get(str(meta_batch.unique_id), {})
    return int(manager.get("inputs", {}).get("requeue", 0) or 0)


def _batch_carry(meta_batch, prompt: dict, node_id: str) -> tuple[Carry, int]:
    batch = _batch_index(meta_batch, prompt)
    states = _STATES.setdefault(meta_batch, {})
    if batch == 0:  # the manager starts a video: whatever this sampler kept from an earlier one goes
        states.pop(node_id, None)
        return Carry(), 0
    state = states.get(node_id)
    if state is None or state.batch != batch - 1:
        states.pop(node_id, None)
        held = "no state" if state is None else f"batch {state.batch + 1}'s state"
        raise VIDiffError(
            f"meta_batch: this is batch {batch + 1} of the video, but VIDiff Sampler holds {held}, not batch "
            f"{batch}'s (the server restarted, its cache was cleared, or a batch failed); queue the workflow again "
            f"to start from the first batch")
    return state.carry, batch


def release(meta_batch, node_id: str) -> None:
    _STATES.get(meta_batch, {}).pop(node_id, None)


def held_states() -> int:
    """How many long-video chains are kept between meta batches (for tests and the memory check)."""
    return sum(len(states) for states in _STATES.values())


def sample_in_parts(video: torch.Tensor, translate: Callable[[torch.Tensor, Carry | None], tuple[torch.Tensor,
                    Carry | None]], *, meta_batch=None, continuation: Continuation | None = None,
                    prompt: dict | None = None, node_id: str | None = None) -> torch.Tensor:
    """Run `translate(new_source, carry) -> (new frames, next carry)` on `video` (1, 4, F, h, w) raw as one part
    of a longer video (carry None: a whole video in one run); returns the sampler's output, same frames as `video`."""
    if continuation is not None:
        return _continue_from(video, translate, continuation)
    if meta_batch is None:
        return translate(video, None)[0]
    key = str(node_id)
    carry, batch = _batch_carry(meta_batch, prompt or {}, key)
    logging.info("VIDiff: meta batch %d, frames %d–%d", batch + 1, carry.frames_done + 1,
                 carry.frames_done + video.shape[2])
    try:
        result, after = translate(video, carry)
    except BaseException:  # cancelled or failed: this video cannot continue, keep nothing
        release(meta_batch, key)
        logging.info("VIDiff Sampler (node %s): long-video state dropped (cancelled or failed in batch %d)", key,
                     batch + 1)
        raise
    if getattr(meta_batch, "has_closed_inputs", False):  # the loader gave its last frames: the video is done
        release(meta_batch, key)
        logging.info("VIDiff Sampler (node %s): long-video state dropped after the last batch (%d frames)", key,
                     after.frames_done)
    else:
        _STATES.setdefault(meta_batch, {})[key] = _BatchState(batch, after)
    return result


def _continue_from(video: torch.Tensor, translate, continuation: Continuation) -> torch.Tensor:
    n = continuation.frames
    if n == 0:
        return translate(video, Carry(continuation.first_frame))[0]
    previous = continuation.previous
    samples = previous.get("samples") if isinstance(previous, dict) else None
    if not isinstance(samples, torch.Tensor) or samples.ndim != 4 or samples.shape[0] < n:
        got = tuple(samples.shape) if isinstance(samples, torch.Tensor) else "nothing"
        raise LatentError(f"continue_from: frames is {n}, so previous must be a LATENT with at least {n} translated "
                          f"frames [frames, 4, height/8, width/8]; got {got}")
    if video.shape[2] <= n:
        raise LatentError(f"continue_from: the source has {video.shape[2]} frames, all of them among the {n} already "
                          f"translated; give the source at least one new frame after them")
    done = samples[samples.shape[0] - n:].permute(1, 0, 2, 3).unsqueeze(0).to(video)  # (1, 4, n, h, w)
    carry = Carry(continuation.first_frame + n, done, video[:, :, :n])
    carry.check_part(video[:, :, n:], "continue_from (previous against the source)")
    new_frames, _ = translate(video[:, :, n:], carry)
    return torch.cat([done.to(new_frames), new_frames], dim=2)
