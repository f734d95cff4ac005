"""A long video from the client, segment by segment, resumable: `run --video long.mp4` on a workflow whose VIDiff
Sampler has VIDiff Long Video (autoregressive or overlap_guided), when the video has more frames than one segment.

Each segment is one prompt on the server; the client carries the long-video state between them, so the server
holds one segment at a time (its memory stays flat however long the video) and nothing lives only on the server:
- the client decodes the video itself (one pass, one frame at a time) and uploads each segment's frames as a
  lossless file (PNG frames in a .mov: ComfyUI's LoadVideo gives back the exact pixels), overwriting the previous
  segment's under one name, so the server's input folder holds one segment per video;
- segment k, new frames [a, b), sends the source frames [a − c, b), c = min(clip_length − 1, a): its first c frames
  are already translated. VIDiff Continue From (frames c, first_frame a − c, previous: the carried latent, read by
  the host's LoadLatent) makes the sampler continue from them as one run would: the noise is drawn per frame index,
  and where segments end at the ends of one run's clips (the client picks those cuts), the frames equal one run's;
- the sampler's result is saved exactly (the host's SaveLatent, float32) and downloaded: the last clip_length − 1
  frames carried into the next segment; the finished frames [a, b) come back as PNGs (the host's PreviewImage,
  in the server's temp folder) into the segment's folder.

On disk, beside the output video: `<out>/<video stem>_segments/` holds manifest.jsonl (the video's SHA-256, the
workflow's fingerprint, the segment plan, then one line per finished segment, synced) and seg_0001/, seg_0002/, ...
(frame_000000.png... numbered by frame index in the whole video, and carry.latent). A rerun of the same command
skips the finished segments and goes on from the last one's carry: after the client was killed, or the server
restarted. A changed video, workflow, --set value or --segment-frames starts over (said on stderr). When every
segment is done the frames are encoded into `<out>/<video stem>_vidiff.mp4` (H.264, the source's frame rate, its
audio copied, or re-encoded to AAC where MP4 cannot hold it).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import sys
import time
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from .batch import fingerprint
from .client import ComfyClient
from .errors import PromptFailed, RemoteError, ServerUnavailable, UsageError
from .progress import ProgressLine
from .workflow import Prompt, _is_link, describe

DEFAULT_SEGMENT_FRAMES = 48  # 4 clips of the default 16 sharing 4: a segment is re-planned as one run would
SAMPLER, LONG_VIDEO, CONTINUE = "VIDiffSampler", "VIDiffLongVideo", "VIDiffContinueFrom"
CONTINUING_MODES = ("autoregressive", "overlap_guided")
MANIFEST = "manifest.jsonl"
LATENT_BATCH_MAX = 63  # LatentFromBatch's batch_index limit (the host's); its length limit is 64
OUTPUT_SUFFIX = "_vidiff.mp4"
MP4_AUDIO = {"aac", "mp3", "alac", "opus", "flac", "ac3", "eac3"}


# -- the workflow -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LongVideoSetup:
    """Where the workflow translates a long video: its sampler, the VIDiff Long Video settings, and the IMAGE link
    (node id, output) whose frames it saves from the sampler's result."""

    sampler: str
    long_video: str
    clip_length: int
    overlap: int
    mode: str
    result: tuple[str, int]

    @property
    def carried(self) -> int:
        """Frames one segment hands the next (as the library's Carry: clip_length − 1)."""
        return max(self.clip_length - 1, 0)


def _consumers(prompt: Prompt) -> dict[str, set[str]]:
    users: dict[str, set[str]] = {node_id: set() for node_id in prompt}
    for node_id, node in prompt.items():
        for value in node["inputs"].values():
            if _is_link(value) and value[0] in users:
                users[value[0]].add(node_id)
    return users


def _upstream(prompt: Prompt, start: list) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        link = todo.pop()
        if not _is_link(link) or link[0] in seen or link[0] not in prompt:
            continue
        seen.add(link[0])
        todo.extend(v for v in prompt[link[0]]["inputs"].values() if _is_link(v))
    return seen


def _spec_type(spec) -> str | None:
    return spec[0] if isinstance(spec, (list, tuple)) and spec and isinstance(spec[0], str) else None


def find_long_video(prompt: Prompt, video_node: str, input_specs) -> tuple[LongVideoSetup | None, str]:
    """The workflow's long-video setup, or (None, why segmenting does not apply).

    input_specs: class_type -> {input name: its /object_info spec} (the server's), to tell IMAGE inputs."""
    samplers = [i for i, n in prompt.items() if n["class_type"] == SAMPLER]
    if len(samplers) != 1:
        return None, f"it has {len(samplers)} {SAMPLER} nodes (segments need exactly one)"
    sampler = samplers[0]
    inputs = prompt[sampler]["inputs"]
    link = inputs.get("long_video")
    if not _is_link(link) or prompt.get(link[0], {}).get("class_type") != LONG_VIDEO:
        return None, f"its sampler {describe(prompt, sampler)} has no {LONG_VIDEO} node linked to long_video"
    if video_node not in _upstream(prompt, inputs.get("source")):
        return None, f"the sampler's source does not come from {describe(prompt, video_node)}"
    if _is_link(inputs.get("continue_from")) or _is_link(inputs.get("meta_batch")):
        return None, "its sampler already takes continue_from or meta_batch"
    settings = prompt[link[0]]["inputs"]
    values = {k: settings.get(k) for k in ("clip_length", "overlap", "mode")}
    if any(_is_link(v) or v is None for v in values.values()):
        return None, f"{describe(prompt, link[0])} takes clip_length, overlap or mode from a link, not a value"
    if values["mode"] not in CONTINUING_MODES:
        return None, (f"{describe(prompt, link[0])} mode is {values['mode']} (segments continue in "
                      f"{' or '.join(CONTINUING_MODES)} mode)")
    users = _consumers(prompt)
    below, todo = set(), [sampler]
    while todo:
        for user in users[todo.pop()]:
            if user not in below:
                below.add(user)
                todo.append(user)
    results: dict[tuple[str, int], str] = {}  # the saved result IMAGE -> the save that takes it
    for node_id in sorted(below):
        if users[node_id]:
            continue  # not a sink
        specs = input_specs(prompt[node_id]["class_type"]) or {}
        for name, value in prompt[node_id]["inputs"].items():
            if not _is_link(value) or (value[0] not in below and value[0] != sampler):
                continue
            kind = _spec_type(specs.get(name))
            if kind == "VIDEO":  # SaveVideo ← CreateVideo(images, ...)
                images = prompt[value[0]]["inputs"].get("images")
                if _is_link(images) and (images[0] in below or images[0] == sampler):
                    results.setdefault((images[0], images[1]), node_id)
            elif kind == "IMAGE":
                results.setdefault((value[0], value[1]), node_id)
    if not results:
        return None, f"nothing downstream of {describe(prompt, sampler)} saves its frames"
    if len(results) > 1:
        saves = ", ".join(describe(prompt, n) for n in results.values())
        return None, f"it saves {len(results)} different results of the sampler ({saves}); segments keep one"
    return LongVideoSetup(sampler, link[0], int(values["clip_length"]), int(values["overlap"]), str(values["mode"]),
                          next(iter(results))), ""


def plan_segments(total: int, segment_frames: int, clip_length: int, overlap: int) -> list[tuple[int, int]]:
    """[(a, b), ...]: each segment's new frames, in order, covering 0..total. A segment ends where one run's clip
    ends (clip_length + k·(clip_length − overlap), or the video's end) when one lies within segment_frames of the
    previous end, so the segments give one run's frames; else (segment_frames less than clip_length − overlap, or a
    first segment shorter than a clip) after segment_frames."""
    stride = clip_length - overlap
    ends = [] if stride <= 0 or segment_frames < stride else list(range(clip_length, total, stride))
    cuts, at = [], 0
    while at < total:
        limit = min(at + segment_frames, total)
        snapped = [e for e in ends if at < e <= limit]
        end = limit if limit == total else (snapped[-1] if snapped else limit)
        cuts.append((at, end))
        at = end
    return cuts


def segment_prompt(prompt: Prompt, setup: LongVideoSetup, video_node: str, source_name: str, first_frame: int,
                   done: int, new: int, carry_name: str | None, tag: str, keep: int) -> tuple[Prompt, str, str]:
    """The prompt of one segment: the workflow's saves and other end nodes replaced by the client's; the source
    `source_name` holds `done` frames already translated (the last ones of `carry_name`) then `new` frames, frame
    `first_frame` of the video first. Returns (prompt, the node that previews the new frames, the node that saves
    the sampler's result: at least its last `keep` frames)."""
    job = copy.deepcopy(prompt)
    for node_id, users in _consumers(job).items():
        if not users:
            del job[node_id]  # saves, previews, metrics: per segment they would hold the overlap frames again
    next_id = max((int(i) for i in job if i.isdigit()), default=0) + 1

    def add(class_type: str, title: str, **inputs) -> str:
        nonlocal next_id
        node_id = str(next_id)
        next_id += 1
        job[node_id] = {"class_type": class_type, "inputs": inputs, "_meta": {"title": title}}
        return node_id

    job[video_node]["inputs"]["file"] = source_name
    cont = {"frames": done, "first_frame": first_frame}
    if done:
        cont["previous"] = [add("LoadLatent", "Carry from the previous segment", latent=carry_name), 0]
    job[setup.sampler]["inputs"]["continue_from"] = [add(CONTINUE, "Continue from the previous segment", **cont), 0]
    frames = add("ImageFromBatch", "New frames of this segment", image=list(setup.result), batch_index=done,
                 length=4096)
    preview = add("PreviewImage", "Segment frames (to the client)", images=[frames, 0])
    carry = [setup.sampler, 0]
    skip = done + new - keep
    if 0 < skip <= LATENT_BATCH_MAX and keep <= LATENT_BATCH_MAX + 1:  # only the frames the next segment needs
        carry = [add("LatentFromBatch", "Last frames (the carry)", samples=carry, batch_index=skip, length=keep), 0]
    save = add("SaveLatent", "Carry for the next segment", samples=carry, filename_prefix=f"vidiff_segments/{tag}")
    return job, preview, save


# -- the video ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VideoInfo:
    """What the client needs of the --video: frame count, size, frame rate, audio, content hash."""

    path: Path
    frames: int
    width: int
    height: int
    fps: Fraction
    audio: bool
    sha256: str


def _av():
    try:
        import av
    except ImportError:
        raise UsageError("--video: sending a long video in segments needs PyAV on this machine "
                         "(pip install av), or run it in one prompt with --segment-frames 0") from None
    return av


def _decode(path: Path):
    """(index, (H, W, 3) uint8) of every frame, checking that the frame size stays the same."""
    av = _av()
    size = None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UsageError(f"--video {path}: no video stream (audio only?)")
            for index, frame in enumerate(container.decode(video=0)):
                if size is None:
                    size = (frame.width, frame.height)
                elif (frame.width, frame.height) != size:
                    raise UsageError(
                        f"--video {path}: the frame size changes at frame {index}, from {size[0]}×{size[1]} to "
                        f"{frame.width}×{frame.height}; a video translated in segments keeps one frame size: "
                        f"re-encode it at one size first")
                yield index, frame.to_ndarray(format="rgb24")
    except av.error.FFmpegError as e:
        raise UsageError(f"--video {path}: could not be decoded ({e})") from None


def scan_video(path: Path) -> VideoInfo:
    """One decoding pass: the frame count (decoded, not the header's guess) and a size check on every frame."""
    av = _av()
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    count, shape = 0, (0, 0, 0)
    for count, frame in _decode(path):
        shape = frame.shape
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = Fraction(stream.average_rate) if stream.average_rate else Fraction(24)
        audio = bool(container.streams.audio)
    return VideoInfo(path, count + 1 if shape[0] else 0, shape[1], shape[0], fps, audio, sha.hexdigest())


class FrameSource:
    """The video's frames, decoded once, in order: take(start, end) with non-decreasing starts, holding only the
    frames from the last start on."""

    def __init__(self, path: Path):
        self.path = path
        self._frames = _decode(path)
        self._held: deque = deque()  # (index, frame)
        self._next = 0

    def take(self, start: int, end: int) -> list:
        while self._held and self._held[0][0] < start:
            self._held.popleft()
        while self._next < end:
            try:
                index, frame = next(self._frames)
            except StopIteration:
                raise UsageError(f"--video {self.path}: it ended after {self._next} frames while reading frames "
                                 f"{start}–{end - 1} (did the file change?)") from None
            self._next = index + 1
            if index >= start:
                self._held.append((index, frame))
        return [frame for index, frame in self._held if start <= index < end]


def write_lossless(frames: list, fps: Fraction, path: Path) -> None:
    """PNG frames in a QuickTime file: ComfyUI's LoadVideo (PyAV, rgb24) gives back these exact pixels."""
    av = _av()
    with av.open(str(path), "w", format="mov") as container:
        stream = container.add_stream("png", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "rgb24"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def encode_output(frame_files: list[Path], video: VideoInfo, path: Path, warn) -> None:
    """The finished frames as one H.264 MP4 at the source's frame rate, with the source's audio (copied, or
    re-encoded to AAC when MP4 cannot hold its codec)."""
    av = _av()
    import numpy as np
    from PIL import Image

    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), "w", format="mp4") as out, av.open(str(video.path)) as source:
        stream = None
        audio_in = source.streams.audio[0] if video.audio and source.streams.audio else None
        audio_out, resampler = None, None
        for i, file in enumerate(frame_files):
            with Image.open(file) as im:
                rgb = np.asarray(im.convert("RGB"))
            if stream is None:
                stream = out.add_stream("libx264", rate=video.fps)
                stream.height, stream.width = rgb.shape[:2]
                even = rgb.shape[0] % 2 == 0 and rgb.shape[1] % 2 == 0
                stream.pix_fmt = "yuv420p" if even else "yuv444p"
                stream.options = {"crf": "17"}
                if audio_in is not None:
                    try:
                        if audio_in.codec_context.name in MP4_AUDIO:
                            audio_out = out.add_stream_from_template(audio_in)
                        else:
                            audio_out = out.add_stream("aac", rate=audio_in.codec_context.sample_rate)
                            resampler = av.AudioResampler(format="fltp", layout=audio_in.codec_context.layout,
                                                          rate=audio_in.codec_context.sample_rate)
                    except (av.error.FFmpegError, ValueError, TypeError) as e:
                        warn(f"note: the output has no audio: the source's {audio_in.codec_context.name} audio "
                             f"could not be added ({e})")
                        audio_out = None
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if audio_out is not None:
            for packet in source.demux(audio_in):
                if resampler is None:
                    if packet.dts is None:
                        continue
                    packet.stream = audio_out
                    out.mux(packet)
                    continue
                for decoded in packet.decode():
                    for chunk in resampler.resample(decoded):
                        for encoded in audio_out.encode(chunk):
                            out.mux(encoded)
            if resampler is not None:
                for encoded in audio_out.encode(None):
                    out.mux(encoded)
    os.replace(tmp, path)


# -- the run ------------------------------------------------------------------------------------------------------

class SegmentLog:
    """<parts>/manifest.jsonl: a header (what is being made), then one line per finished segment, synced."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / MANIFEST

    def resume(self, header: dict) -> tuple[list[dict], str]:
        """(the finished segments under this header whose files are all there, in order from the first; why
        the earlier parts do not count, or "")."""
        if not self.path.is_file():
            return [], ""
        lines = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
        old = lines[0] if lines and lines[0].get("kind") == "header" else {}
        if not old:
            return [], "its manifest has no header"
        for key, what in (("video_sha256", "the video changed"),
                          ("workflow", "the workflow or its --set values changed"),
                          ("segment_frames", f"--segment-frames changed (was {old.get('segment_frames')})"),
                          ("segments", "the segment plan changed")):
            if old.get(key) != header[key]:
                return [], what
        done = {entry["segment"]: entry for entry in lines[1:] if entry.get("kind") == "segment"}
        finished = []
        for k in range(1, len(header["segments"]) + 1):
            entry = done.get(k)
            if entry is None or not all((self.folder / f).is_file() for f in [*entry["frames"], entry["carry"]]):
                break
            finished.append(entry)
        return finished, ""

    def start(self, header: dict) -> None:
        for old in self.folder.glob("seg_*"):
            shutil.rmtree(old, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write(header, "w")

    def record(self, entry: dict) -> None:
        self._write(entry, "a")

    def _write(self, entry: dict, mode: str) -> None:
        cut = mode == "a" and self.path.is_file() and not self.path.read_bytes().endswith(b"\n")
        with open(self.path, mode, encoding="utf-8") as f:
            f.write(("\n" if cut else "") + json.dumps(entry) + "\n")  # after a line a kill cut short
            f.flush()
            os.fsync(f.fileno())


class FramesProgress(ProgressLine):
    """The progress line of a video in segments: frames done / total and an ETA (from this run's frames per
    second, counting the running segment's clips) before the node's progress."""

    def __init__(self, label: str, total: int, segments: int, stream=None, enabled: bool = True):
        super().__init__(label, stream, enabled=enabled)
        self.total, self.segments = total, segments
        self.done = self.first_done = 0
        self.segment, self.new, self.fraction = 0, 0, 0.0

    def begin(self, segment: int, done: int, new: int) -> None:
        if not self.segment:
            self.first_done = done
            self.start = time.monotonic()
        self.segment, self.done, self.new, self.fraction = segment, done, new, 0.0

    def clip_step(self, clip: int, clips: int, step: int, steps: int) -> None:
        self.fraction = ((clip - 1) * steps + step) / max(clips * steps, 1)
        super().clip_step(clip, clips, step, steps)

    def current_status(self) -> str:
        made = self.done + self.fraction * self.new - self.first_done
        left = self.total - self.done - self.fraction * self.new
        eta = _duration(left * (time.monotonic() - self.start) / made) if made > 0 else "…"
        return f"frames {self.done}/{self.total} ETA {eta}, segment {self.segment}/{self.segments}"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


def segment_setup(prompt: Prompt, video_node: str, video_path: Path, segment_frames: int | None, client: ComfyClient,
                  workflow: str) -> tuple[LongVideoSetup, VideoInfo, int] | None:
    """(the long-video setup, the video, frames per segment) when `run --video` goes in segments; None when it
    runs in one prompt as before (no long-video sampler, --segment-frames 0, a video of one segment or less)."""
    if segment_frames == 0:
        return None
    setup, why = find_long_video(prompt, video_node, client.input_specs)
    if setup is None:
        if segment_frames is not None:
            raise UsageError(f"--segment-frames: {workflow} cannot go in segments: {why}")
        return None
    if segment_frames is None:
        segment_frames = DEFAULT_SEGMENT_FRAMES
    if segment_frames < max(setup.overlap, 1):
        raise UsageError(
            f"--segment-frames {segment_frames} is smaller than the long-video overlap ({setup.overlap} frames, "
            f"{describe(prompt, setup.long_video)}); use at least {max(setup.overlap, 1)}, best a multiple of "
            f"clip_length − overlap ({setup.clip_length - setup.overlap}), e.g. "
            f"{4 * (setup.clip_length - setup.overlap)}")
    video = scan_video(video_path)
    if video.frames <= segment_frames:
        return None
    if client.input_specs(CONTINUE) is None:
        raise UsageError(f"--video {video_path.name}: its {video.frames} frames would go in segments of "
                         f"{segment_frames}, but the server's VIDiff pack has no {CONTINUE} node (older than this "
                         f"client): update the pack on the server, or run in one prompt with --segment-frames 0")
    return setup, video, segment_frames


def warn(text: str) -> None:
    print(text, file=sys.stderr)


def run_segments(client: ComfyClient, prompt: Prompt, setup: LongVideoSetup, video_node: str, video: VideoInfo,
                 segment_frames: int, out_dir: Path, quiet: bool = False, timeout: float | None = None) -> Path:
    """Translates the video segment by segment (skipping those a previous run finished); returns the output
    video's path."""
    parts = out_dir / f"{video.path.stem}_segments"
    segments = plan_segments(video.frames, segment_frames, setup.clip_length, setup.overlap)
    header = {"kind": "header", "video": video.path.name, "video_sha256": video.sha256, "workflow": fingerprint(prompt),
              "segment_frames": segment_frames, "frames": video.frames, "segments": [list(s) for s in segments]}
    log = SegmentLog(parts)
    finished, changed = log.resume(header)
    if changed:
        warn(f"note: {parts} holds segments of another run ({changed}); starting over")
    if not finished:
        log.start(header)
    tag = f"{video.sha256[:12]}_{header['workflow'][:8]}"
    source_name, carry_name = f"vidiff_segment_{tag}.mov", f"vidiff_carry_{tag}.latent"
    progress = FramesProgress(video.path.name, video.frames, len(segments), enabled=not quiet)
    if finished:
        warn(f"resuming {video.path.name} at frame {finished[-1]['end']} of {video.frames}: segments 1–"
             f"{len(finished)} of {len(segments)} are done in {parts}")
    frames = FrameSource(video.path)
    for k, (a, b) in enumerate(segments, start=1):
        if k <= len(finished):
            continue
        done = min(setup.carried, a)
        keep = min(setup.carried, b)
        progress.begin(k, a, b - a)
        try:
            source = parts / "source.mov"
            write_lossless(frames.take(a - done, b), video.fps, source)
            uploaded = client.upload(source, source_name, overwrite=True)
            carry_uploaded = None
            if done:
                carry_uploaded = client.upload(parts / finished[-1]["carry"], carry_name, overwrite=True)
            job, preview, save = segment_prompt(prompt, setup, video_node, uploaded, a - done, done, b - a,
                                                carry_uploaded, tag, keep)
            download = parts / "download"
            shutil.rmtree(download, ignore_errors=True)
            result = client.run(job, download, progress, timeout)
        except RemoteError as e:  # the server went away, the prompt failed, the video cannot be read on
            progress.finish(f"stopped in segment {k}/{len(segments)}")
            where = (f"segments 1–{k - 1} are kept in {parts}; rerun the same command to go on from frame {a}"
                     if k > 1 else "rerun the same command to try again")
            text = f"segment {k} (frames {a}–{b - 1}): {e}; {where}"
            if isinstance(e, PromptFailed):
                raise PromptFailed(text, e.prompt_id, e.status) from None
            raise type(e)(text) from None
        pngs, latents = result.by_node.get(preview, []), result.by_node.get(save, [])
        if len(pngs) != b - a or len(latents) != 1:
            raise RemoteError(f"segment {k}: the workflow gave {len(pngs)} frames for frames {a}–{b - 1} "
                              f"({b - a} expected): a node between {describe(prompt, video_node)} and "
                              f"{describe(prompt, setup.sampler)} changes the frame count, so the video cannot go in "
                              f"segments; run it in one prompt with --segment-frames 0")
        folder = parts / f"seg_{k:04d}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        names = []
        for i, png in enumerate(pngs):
            os.replace(png, folder / f"frame_{a + i:06d}.png")
            names.append(f"{folder.name}/frame_{a + i:06d}.png")
        os.replace(latents[0], folder / "carry.latent")
        entry = {"kind": "segment", "segment": k, "start": a, "end": b, "frames": names,
                 "carry": f"{folder.name}/carry.latent", "seconds": round(result.seconds, 2),
                 "prompt_id": result.prompt_id}
        log.record(entry)
        finished.append(entry)
        progress.done = b
        progress.fraction = 0.0
        progress.note(f"{video.path.name}: segment {k}/{len(segments)}, frames {a}–{b - 1}, done in "
                      f"{result.seconds:.1f} s ({progress.current_status()})")
    for leftover in (parts / "source.mov", parts / "download"):
        shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)
    output = out_dir / f"{video.path.stem}{OUTPUT_SUFFIX}"
    files = [parts / f for entry in finished for f in entry["frames"]]
    if not output.is_file() or output.stat().st_mtime < log.path.stat().st_mtime:  # else made by an earlier run
        encode_output(files, video, output, warn)
    progress.finish(f"{len(files)} frames in {len(segments)} segments")
    return output
