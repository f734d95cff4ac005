"""Loss logging: a CSV (always readable, resumable) or TensorBoard events."""

from __future__ import annotations

import csv
from pathlib import Path

from .errors import TrainConfigError

FIELDS = ("step", "loss", "lr", "samples_per_s", "skipped_items")


class RunLog:
    def __init__(self, output_dir: Path, kind: str, resume_step: int):
        self.path = output_dir / "log.csv"
        self.writer = None
        if kind == "tensorboard":
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise TrainConfigError("log: tensorboard needs the tensorboard package (pip install tensorboard), "
                                       "or set log: csv") from None
            self.writer = SummaryWriter(str(output_dir / "tensorboard"), purge_step=resume_step + 1)
        # A resumed run rewrites the steps after its checkpoint: keep only the rows up to it.
        rows = []
        if self.path.exists():
            with self.path.open() as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, FIELDS)
            w.writeheader()
            w.writerows(rows)

    def write(self, step: int, values: dict[str, float]) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, FIELDS).writerow({"step": step, **values})
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(f"train/{k}", v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_log(output_dir: str | Path) -> list[dict[str, float]]:
    with (Path(output_dir) / "log.csv").open() as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
