"""AnimateDiff SD-1.5 motion modules: original layout (guoyww `mm_sd_v15*.ckpt`, `v3_sd15_mm.ckpt`) and
diffusers' MotionAdapter layout.

Versions, told apart by the file itself:
- v1 (`mm_sd_v14`, `mm_sd_v15`): positional table of 24 frames, no mid-block module;
- v2 (`mm_sd_v15_v2`): 32 frames, a motion module in the mid block;
- v3 (`v3_sd15_mm`): 32 frames, no mid-block module.

Original layout, per module: `temporal_transformer.{norm, proj_in, proj_out}` and
`transformer_blocks.0.{attention_blocks.{0,1}, norms.{0,1}, ff, ff_norm}`, where each attention block
carries its own copy of the sinusoidal table `pos_encoder.pe` (1, L, C). diffusers keeps one table per
transformer block (`pos_embed.pe`, used before both attentions), so the second copy must equal the first.
"""

from __future__ import annotations

import re

import torch

from ..errors import CheckpointError
from .detect import FileKind, identify, motion_version
from .io import TensorFile
from .state import LazyState, LoadReport, check_keys

_MODULE = re.compile(r"^((?:down_blocks|up_blocks)\.\d+|mid_block)\.motion_modules\.(\d+)\.(.+)$")
_PE = re.compile(r"^transformer_blocks\.(\d+)\.pos_embed\.pe$")
# diffusers name part -> original name part, inside one transformer block
_RENAMES = (("attn1.", "attention_blocks.0."), ("attn2.", "attention_blocks.1."), ("norm1.", "norms.0."),
            ("norm2.", "norms.1."), ("norm3.", "ff_norm."))


def motion_layout(tf: TensorFile) -> tuple[int, bool]:
    """(max_seq_length, has_mid_block) of a motion-module file, read from its shapes."""
    lengths = {s[1] for k, s in tf.shapes.items() if k.endswith(".pe") and len(s) == 3}
    if len(lengths) != 1:
        raise CheckpointError(tf.path, f"motion module positional tables disagree on the frame count: {sorted(lengths)}"
                              if lengths else "motion module has no positional tables (pos_encoder.pe)")
    has_mid = any(k.startswith("mid_block.motion_modules.") for k in tf.keys())
    return lengths.pop(), has_mid


def original_names(key: str) -> list[str]:
    """Original-layout names of one diffusers motion-module tensor (two for a positional table)."""
    m = _MODULE.match(key)
    assert m, f"not a motion-module key: {key}"
    block, index, rest = m.groups()
    head = f"{block}.motion_modules.{index}.temporal_transformer."
    if pe := _PE.match(rest):
        return [f"{head}transformer_blocks.{pe[1]}.attention_blocks.{a}.pos_encoder.pe" for a in (0, 1)]
    for new, old in _RENAMES:
        rest = rest.replace("." + new, "." + old)
    return [head + rest]


def load_motion_module(tf: TensorFile, kind: FileKind,
                       expected: dict[str, tuple]) -> tuple[LazyState, LoadReport]:
    """Read a motion module as diffusers-named `motion_modules` tensors of `UNetMotionModel` (readers that
    read each tensor when called; the small positional tables are read and compared now).

    Args:
        tf: the open file; kind: what `identify` said it is.
        expected: diffusers name -> shape of the motion-module tensors of the target model.
    """
    report = LoadReport(files=[tf.name])
    original = any(".temporal_transformer." in k for k in tf.keys())
    names = {k: original_names(k) if original else [k] for k in expected}  # diffusers -> file key(s)
    layout = "AnimateDiff SD-1.5 motion module (" + ("original" if original else "diffusers") + " layout)"
    check_keys(tf.path, {f: expected[d] for d, files in names.items() for f in files}, tf.shapes, layout)

    state: LazyState = {}
    for target, (first, *copies) in names.items():
        if not copies:
            state[target] = tf.reader(first)
            continue
        state[target] = tf.take(first)
        for copy in copies:
            if not torch.equal(tf.take(copy), state[target]):
                raise CheckpointError(tf.path, f"{copy} differs from {first}: this loader needs the two attention "
                                               "blocks of a motion module to share one positional table")
            report.skip("positional-table copies (equal to the one used)")
    report.used = len(state)
    if kind.motion_version:
        report.notes.append(f"AnimateDiff {kind.motion_version} motion module")
    return state, report


def read_motion_module(path, *, any_size: bool = False) -> tuple[dict[str, torch.Tensor], str, int, bool]:
    """All tensors of a motion-module file under their original names (a diffusers-layout file is renamed,
    its one positional table copied to both attention blocks), for the host's temporal layers
    (`vidiff_model.temporal.TemporalModule`).

    Args:
        path: AnimateDiff SD-1.5 motion module, `.safetensors` or `.ckpt`, original or diffusers layout.
        any_size: accept a module of a non-SD-1.5 width (tests' tiny models); shapes are checked on loading.
    Returns:
        (tensors, version v1/v2/v3, frames of the positional table, has a mid-block module).
    """
    tf = TensorFile(path)
    kind = identify(tf.shapes, tf.metadata)
    if kind.kind not in (("motion_module", "motion_module_unknown") if any_size else ("motion_module",)):
        raise CheckpointError(tf.path, "expected an AnimateDiff SD-1.5 motion module (v1, v2 or v3); "
                                       f"this file looks like {kind.description}")
    max_len, has_mid = motion_layout(tf)
    version = kind.motion_version or motion_version(max_len, has_mid)
    tensors: dict[str, torch.Tensor] = {}
    for key in tf.keys():
        value = tf.take(key)
        for name in (original_names(key) if ".temporal_transformer." not in key else [key]):
            tensors[name] = value
    return tensors, version, max_len, has_mid
