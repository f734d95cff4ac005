"""Shared pieces of the loaders: key checking with named errors, a load report, and building a model
without initialising weights that are about to be overwritten (1.3 B parameters take seconds to init)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..config import VIDiffConfig
from ..errors import CheckpointError
from ..model import VIDiffModel

MAX_NAMED = 5  # key names quoted in an error; the count says how many more
# name -> tensor, or a zero-argument reader that returns it (read only when `materialize` gets to it)
LazyState = dict[str, torch.Tensor | Callable[[], torch.Tensor]]


@dataclass
class LoadReport:
    """What a loader did with every tensor of its input files."""

    files: list[str] = field(default_factory=list)
    used: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> tensor count
    notes: list[str] = field(default_factory=list)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + count

    def merge(self, other: "LoadReport") -> "LoadReport":
        self.files += other.files
        self.used += other.used
        for reason, n in other.skipped.items():
            self.skip(reason, n)
        self.notes += other.notes
        return self

    def summary(self) -> str:
        skipped = ", ".join(f"{n} {reason}" for reason, n in self.skipped.items()) or "none"
        notes = "".join(f"\n  note: {n}" for n in self.notes)
        return f"{self.used} tensors used; skipped: {skipped}{notes}"


def _named(keys, limit: int = MAX_NAMED) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def check_keys(path, expected: dict[str, tuple], found: dict[str, tuple], format_name: str,
               shape_exempt: tuple[str, ...] = ()) -> None:
    """Raise CheckpointError naming missing keys, unexpected keys and shape mismatches.

    Args:
        expected: target name -> shape.
        found: the file's tensors, already renamed to target names -> shape.
        format_name: the format the file was read as, for the message.
        shape_exempt: target names whose shape the caller checks itself.
    """
    missing = expected.keys() - found.keys()
    unexpected = found.keys() - expected.keys()
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing tensors ({_named(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors ({_named(unexpected)})")
        raise CheckpointError(path, f"does not match the expected {format_name}: " + "; ".join(parts))
    wrong = [f"{k} is {tuple(found[k])}, expected {tuple(expected[k])}"
             for k in sorted(expected) if k not in shape_exempt and tuple(found[k]) != tuple(expected[k])]
    if wrong:
        more = f" and {len(wrong) - MAX_NAMED} more" if len(wrong) > MAX_NAMED else ""
        raise CheckpointError(path, f"tensor shapes do not match the expected {format_name}: "
                                    + "; ".join(wrong[:MAX_NAMED]) + more)


def empty_model(config: VIDiffConfig) -> VIDiffModel:
    """The model with every tensor on the meta device: no memory, no init time."""
    with torch.device("meta"):
        return VIDiffModel(config)


def expected_shapes(model: VIDiffModel) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


# a dtype, None (keep the files' dtypes), or a function of the model's parameter count that picks one
DTypeChoice = torch.dtype | Callable[[int], torch.dtype] | None


def resolve_dtype(dtype: DTypeChoice, model: VIDiffModel) -> torch.dtype | None:
    """The dtype itself, for a function of the parameter count: what it picks for `model` (on meta)."""
    return dtype(model.num_parameters()["total"]) if callable(dtype) else dtype


def materialize(model: VIDiffModel, state: LazyState, path, *,
                dtype: DTypeChoice, device: torch.device | str = "cpu") -> VIDiffModel:
    """Put `state` (complete, checked) into a meta-device model, cast to `dtype` on `device`.

    `state` is consumed in its order, one tensor at a time: each entry is read (readers are called),
    converted and dropped before the next, so converting fp16 files to fp32 peaks near the result's size
    rather than the source's and the result's together. Pass readers (`TensorFile.reader`) or tensors
    nothing else holds.
    """
    dtype = resolve_dtype(dtype, model)
    converted: dict[str, torch.Tensor] = {}
    for key in list(state):
        source = state.pop(key)
        tensor = source() if callable(source) else source
        del source
        want = dtype if (dtype and tensor.is_floating_point()) else tensor.dtype
        converted[key] = tensor.to(device=device, dtype=want)
        del tensor  # the source tensor goes here (unless it already had the wanted dtype and device)
    result = model.load_state_dict(converted, strict=False, assign=True)
    if result.missing_keys or result.unexpected_keys:  # check_keys ran first: this is a programming error
        raise CheckpointError(path, f"internal key mismatch: missing {result.missing_keys[:MAX_NAMED]}, "
                                    f"unexpected {result.unexpected_keys[:MAX_NAMED]}")
    leftover = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    assert not leftover, f"tensors left uninitialised after loading: {leftover[:MAX_NAMED]}"
    return model.eval()
