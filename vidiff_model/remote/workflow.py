"""API-format workflows on the client side: reading and checking them, addressing a node by id, title or type,
setting inputs (`--set NODE.INPUT=VALUE`), and checking that a file is a video before it is uploaded."""

from __future__ import annotations

import copy
import json
import mimetypes
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError

Prompt = dict[str, dict[str, Any]]  # node id -> {"class_type", "inputs", "_meta": {"title"}}
VIDEO_LOADER = "LoadVideo"

# Signatures of the common containers: (offset, bytes); a file with one of these extensions must carry one.
_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot")
_SIGNATURES: dict[str, tuple[tuple[int, bytes], ...]] = {
    **{ext: tuple((4, box) for box in _ISO_BOXES) for ext in (".mp4", ".m4v", ".mov", ".3gp")},
    ".webm": ((0, b"\x1a\x45\xdf\xa3"),),
    ".mkv": ((0, b"\x1a\x45\xdf\xa3"),),
    ".avi": ((8, b"AVI "),),
    ".mpg": ((0, b"\x00\x00\x01\xba"), (0, b"\x00\x00\x01\xb3")),
    ".mpeg": ((0, b"\x00\x00\x01\xba"), (0, b"\x00\x00\x01\xb3")),
    ".flv": ((0, b"FLV"),),
    ".ogv": ((0, b"OggS"),),
    ".wmv": ((0, b"\x30\x26\xb2\x75"),),
}


@dataclass(frozen=True)
class Assignment:
    """One `--set NODE.INPUT=VALUE`: NODE is a node id, title or type; VALUE parsed as JSON when it parses."""

    node: str
    input: str
    value: Any
    text: str  # as given, for messages


PACK_WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"


def resolve_workflow(name: str | Path) -> Path:
    """A workflow file: `name` itself when it exists, else the pack's template of that name (`mini_dehaze` or
    `vidiff_mini_dehaze` -> workflows/api/mini_dehaze.json, or workflows/experimental/api/)."""
    path = Path(name)
    if path.exists() or path.suffix or len(path.parts) > 1:
        return path
    stem = path.name.removeprefix("vidiff_")
    for folder in (PACK_WORKFLOWS / "api", PACK_WORKFLOWS / "experimental" / "api"):
        if (folder / f"{stem}.json").is_file():
            return folder / f"{stem}.json"
    return path


def load_workflow(path: str | Path) -> Prompt:
    """Reads an API-format workflow (what ComfyUI's POST /prompt takes), refusing the editor's UI format.

    Args:
        path: a .json file; `{"prompt": {...}}` (a saved request body) is accepted too.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such workflow file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{path}: not a JSON workflow ({e})") from None
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict) and "nodes" not in data:
        data = data["prompt"]
    if isinstance(data, dict) and ("nodes" in data or "links" in data):
        twin = path.parent / "api" / (path.stem.removeprefix("vidiff_") + ".json")
        use = f"use {twin}, its API-format twin" if twin.is_file() else "export it from the editor with Export (API)"
        raise UsageError(f"{path} is a UI-format workflow (the editor's graph, with \"nodes\" and \"links\"), "
                         f"not the API format the server runs: {use}")
    if not isinstance(data, dict) or not data:
        raise UsageError(f"{path}: not an API-format workflow (expected an object of nodes by id)")
    for node_id, node in data.items():
        if not isinstance(node, dict) or "class_type" not in node or not isinstance(node.get("inputs"), dict):
            raise UsageError(f"{path}: not an API-format workflow (node {node_id!r} has no class_type and inputs)")
    return data


def title(prompt: Prompt, node_id: str) -> str:
    """The node's title (`_meta.title`), or its type when it has none."""
    node = prompt[node_id]
    return str(node.get("_meta", {}).get("title") or node["class_type"])


def describe(prompt: Prompt, node_id: str) -> str:
    """`8 "Sampler" (VIDiffSampler)`, or `8 (VIDiffSampler)` when the title is the type."""
    name, kind = title(prompt, node_id), prompt[node_id]["class_type"]
    return f"{node_id} ({kind})" if name == kind else f"{node_id} \"{name}\" ({kind})"


def find_node(prompt: Prompt, ref: str) -> str:
    """The id of the node `ref` names: a node id, else a title, else a node type; unique or an error."""
    if ref in prompt:
        return ref
    for key in (lambda i: title(prompt, i), lambda i: prompt[i]["class_type"]):
        found = [i for i in prompt if key(i) == ref]
        if len(found) == 1:
            return found[0]
        if found:
            names = ", ".join(describe(prompt, i) for i in found)
            raise UsageError(f"--set: {ref!r} names {len(found)} nodes ({names}); use the node id")
    nodes = ", ".join(describe(prompt, i) for i in prompt)
    raise UsageError(f"--set: no node {ref!r} in the workflow; its nodes are: {nodes}")


def parse_assignment(text: str) -> Assignment:
    """`NODE.INPUT=VALUE` -> Assignment. NODE may hold dots and spaces (a title); INPUT is after the last dot."""
    target, sep, raw = text.partition("=")
    node, dot, name = target.rpartition(".")
    if not sep or not dot or not node.strip() or not name.strip():
        raise UsageError(f"--set {text!r}: expected NODE.INPUT=VALUE (NODE a node id or title, e.g. "
                         "VIDiffSampler.steps=10 or 7.instruction=\"Make it sepia\")")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return Assignment(node.strip(), name.strip(), value, text)


def apply_assignments(prompt: Prompt, assignments: Iterable[Assignment],
                      input_names: Callable[[str], list[str] | None] | None = None) -> Prompt:
    """A copy of `prompt` with the assignments made.

    Args:
        input_names: class_type -> every input the node type takes (the server's /object_info), used for an
            input the workflow leaves out (an optional one); None or a None answer: only the workflow's inputs.
    """
    prompt = copy.deepcopy(prompt)
    for a in assignments:
        node_id = find_node(prompt, a.node)
        inputs = prompt[node_id]["inputs"]
        if a.input not in inputs:
            known = input_names(prompt[node_id]["class_type"]) if input_names else None
            if a.input not in (known or []):
                valid = sorted(set(known or []) | set(inputs))
                raise UsageError(f"--set {a.text!r}: node {describe(prompt, node_id)} has no input {a.input!r}; "
                                 f"its inputs are: {', '.join(valid)}")
        elif _is_link(inputs[a.input]):
            raise UsageError(f"--set {a.text!r}: input {a.input!r} of node {describe(prompt, node_id)} is connected to "
                             f"node {inputs[a.input][0]}; --set only sets values, not links")
        inputs[a.input] = a.value
    return prompt


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def video_node(prompt: Prompt, workflow: str | Path, ref: str | None = None) -> str:
    """The LoadVideo node a `--video` goes into (`ref` picks one when there are several)."""
    if ref is not None:
        node_id = find_node(prompt, ref)
        if prompt[node_id]["class_type"] != VIDEO_LOADER:
            raise UsageError(f"--video-node {ref!r}: node {describe(prompt, node_id)} is not a {VIDEO_LOADER} node")
        return node_id
    found = [i for i, n in prompt.items() if n["class_type"] == VIDEO_LOADER]
    if not found:
        loaders = sorted({t for t in (n["class_type"] for n in prompt.values())
                          if "Load" in t and any(w in t for w in ("Video", "Clip", "Image"))})
        own = f" (it loads its own input: {', '.join(loaders)})" if loaders else ""
        raise UsageError(f"{workflow} has no {VIDEO_LOADER} node{own}, so it takes no --video; run it without --video")
    if len(found) > 1:
        names = ", ".join(describe(prompt, i) for i in found)
        raise UsageError(f"{workflow} has {len(found)} {VIDEO_LOADER} nodes ({names}); pick one with --video-node")
    return found[0]


def is_video_name(path: Path) -> bool:
    """True when the extension is a video type (as ComfyUI's LoadVideo lists input files: by MIME type)."""
    kind, _ = mimetypes.guess_type(path.name, strict=False)
    return bool(kind) and kind.startswith("video/")


def check_video(path: str | Path) -> Path:
    """The path, if it is a readable video file (extension and, for known containers, signature); else an error."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such video file")
    if not is_video_name(path):
        raise UsageError(f"{path} is not a video: ComfyUI's LoadVideo takes video files (.mp4, .mov, .webm, .mkv, "
                         f".avi, ...), not {path.suffix or 'files without an extension'}")
    signatures = _SIGNATURES.get(path.suffix.lower())
    if signatures:
        with open(path, "rb") as f:
            head = f.read(16)
        if not any(head[at:at + len(sig)] == sig for at, sig in signatures):
            raise UsageError(f"{path} is not a video: named {path.suffix.lower()}, it lacks that container's "
                             "signature (renamed or damaged file?)")
    return path
