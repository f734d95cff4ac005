"""The custom node packs a workflow needs besides this one, and, for a workflow about to be queued, every node type
the server does not have, named in one message with the pack that provides it (the server alone would reject the
prompt on the first one: "Cannot execute because node IPAdapterModelLoader does not exist")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import UsageError
from .workflow import Prompt

# node-type prefix -> (pack, where to get it); what the pack's templates use
PACKS: dict[str, tuple[str, str]] = {
    "IPAdapter": ("ComfyUI_IPAdapter_plus", "https://github.com/cubiq/ComfyUI_IPAdapter_plus"),
    "ADE_": ("ComfyUI-AnimateDiff-Evolved", "https://github.com/Kosinkadink/ComfyUI-AnimateDiff-Evolved"),
    "VHS_": ("ComfyUI-VideoHelperSuite", "https://github.com/Kosinkadink/ComfyUI-VideoHelperSuite"),
}


def pack_of(class_type: str) -> tuple[str, str] | None:
    return next((pack for prefix, pack in PACKS.items() if class_type.startswith(prefix)), None)


def check_node_types(prompt: Prompt, input_specs: Callable[[str], Any], workflow: str) -> None:
    """Raises one UsageError naming every node type of `prompt` the server lacks (`input_specs` gives None for
    those), grouped by the custom node pack to install; returns when the server has them all."""
    missing = sorted({node["class_type"] for node in prompt.values() if input_specs(node["class_type"]) is None})
    if not missing:
        return
    packs: dict[tuple[str, str] | None, list[str]] = {}
    for class_type in missing:
        packs.setdefault(pack_of(class_type), []).append(class_type)
    lines = [f"{name} ({', '.join(types)}): install it into ComfyUI's custom_nodes ({url}) and restart ComfyUI"
             for (name, url), types in ((k, v) for k, v in packs.items() if k is not None)]
    if None in packs:
        lines.append(f"{', '.join(packs[None])}: not a node of this server (a custom node pack missing, or an older "
                     "ComfyUI)")
    raise UsageError(f"{workflow} uses node types the server does not have:\n  " + "\n  ".join(lines))
