"""vidiff-mini on a lent GPU within one call's time: `bash scripts/device_run.sh [BUDGET_S] [--micro]`.

    python -m vidiff_model.device_run.run --budget 500 --pack device_pack --out $OUT [--work runs/device]

(The bash script first unpacks the carried wheels, `wheels.py`, then runs this.) Stages, each ending on
the wall clock by its share of the budget (a stage that ends early hands its time on):
  1. bench: `bench/sampling.py --full --steps 20` (16 frames at 512², dual guidance, batched vs sequential),
     until 35 % of the budget;
  2. autoencoder: from scratch, larger batch and crops than the CPU recipe, until 55 %;
  3. latents: every training task per 16-frame chunk, on the GPU, until 65 %;
  4. UNet: configs/train/mini.yaml (v-prediction, same tasks, phrasings, split and seed) at a large batch,
     until the budget minus `reserve_s` (the last checkpoint and export).
Results go to `$OUT` as they appear (at most 8 files, each under 16 MiB; `files.py`): the autoencoder, the
UNet in parts (every checkpoint replaces them), `device_run.json` (what was done: steps, batch, losses,
times), `unet_log.csv`, `bench_sampling.txt`, and the script's log. Everything else stays in `--work`; a second
call on the same machine resumes from it (finished stages are skipped; the UNet gets the whole budget) and
writes the full set of files again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path

from ..mini import MINI_TEXT_ENCODER, PACK_ROOT
from .files import BENCH_FILE, MAX_FILE_BYTES, MAX_FILES, REPORT_FILE, UNET_LOG_FILE, VAE_FILE, part_files

BENCH_MODES = ("full", "smoke", "none")


@dataclass
class DeviceRunConfig:
    """One device call. Stage deadlines are fractions of the budget from the call's start."""

    budget_s: float = 500.0  # one call of at most 10 min, with room for the machine's start-up
    pack: Path = PACK_ROOT / "device_pack"
    work: Path = PACK_ROOT / "runs" / "device"
    out: Path = PACK_ROOT / "device_out"
    bench: str = "full"  # full | smoke (that it runs) | none
    bench_until: float = 0.35  # its child processes start in seconds each: about 3 min on one GPU
    autoencoder_until: float = 0.55
    latents_until: float = 0.65
    reserve_s: float = 20.0  # kept at the end for the UNet's last checkpoint and export
    ae_batch: int = 64  # CPU recipe: 16 crops of 32², then the decoder on 64²
    ae_crop: int = 96
    ae_lr: float = 5e-4
    ae_max_steps: int = 0  # 0: the schedule is sized to the time left by a probe
    ae_probe_steps: int = 50  # two rows of the autoencoder's log (every 25 steps): the second times it
    chunks: int = 3  # 16-frame chunks per clip (CPU recipe: 2); most clips hold 3
    latent_workers: int = 12  # processes making the degradations (the style filters are CPU-bound)
    unet_batch: int = 64  # CPU recipe: 1
    frames: int = 16  # mini.yaml's
    unet_lr: float = 3e-4  # mini.yaml's
    unet_steps_per_call: int = 0  # 0: until the deadline
    save_every: int = 200
    log_every: int = 10
    loader_workers: int = 8
    mixed_precision: str = "bf16"  # on CUDA; the CPU runs fp32
    text_encoder: Path = MINI_TEXT_ENCODER
    micro: bool = False

    def check(self) -> None:
        if self.bench not in BENCH_MODES:
            raise ValueError(f"bench: {self.bench!r}; choose one of {', '.join(BENCH_MODES)}")
        if not 0 <= self.bench_until <= self.autoencoder_until <= self.latents_until <= 1:
            raise ValueError("bench_until <= autoencoder_until <= latents_until must lie in [0, 1], got "
                             f"{self.bench_until}, {self.autoencoder_until}, {self.latents_until}")
        if self.budget_s <= self.reserve_s:
            raise ValueError(f"budget: {self.budget_s:g} s leaves nothing after the {self.reserve_s:g} s reserve")


def micro(cfg: DeviceRunConfig) -> DeviceRunConfig:
    """The same run at test scale (tests/test_device_run.py): a few steps of everything, smoke benchmark."""
    return replace(cfg, micro=True, bench="smoke", bench_until=0.6, autoencoder_until=0.7, latents_until=0.8,
                   reserve_s=min(cfg.reserve_s, 3.0), ae_batch=4, ae_crop=32, ae_max_steps=4, chunks=1,
                   latent_workers=0, unet_batch=1, frames=8, unet_steps_per_call=1, save_every=1, log_every=1,
                   loader_workers=1, mixed_precision="no")


@dataclass
class Clock:
    """Deadlines as `time.monotonic()` values, counted from the call's start `t0` (a `time.time()`)."""

    t0: float
    budget_s: float
    offset: float = field(default_factory=lambda: time.monotonic() - time.time())  # monotonic − wall

    def at(self, fraction: float) -> float:
        return self.t0 + fraction * self.budget_s + self.offset

    def elapsed(self) -> float:
        return time.time() - self.t0


class Report:
    """The run's record: `work/device_run.json` across calls, copied to `out` on every save."""

    def __init__(self, work: Path, out: Path):
        self.work, self.out = work, out
        path = work / REPORT_FILE
        self.data: dict = json.loads(path.read_text()) if path.exists() else {}

    def save(self) -> None:
        text = json.dumps(self.data, indent=1, default=str)
        for folder in (self.work, self.out):
            tmp = folder / f".{REPORT_FILE}.tmp"
            tmp.write_text(text)
            os.replace(tmp, folder / REPORT_FILE)


def restore_outputs(work: Path, out: Path) -> None:
    """A later call's `out` is empty: give it what earlier calls made, before anything new."""
    from .files import split_checkpoint
    from ..training.trainer import checkpoints_in

    for name, src in ((VAE_FILE, work / "vae" / VAE_FILE), (BENCH_FILE, work / BENCH_FILE),
                      (UNET_LOG_FILE, work / "unet" / "log.csv")):
        if src.exists():
            shutil.copy2(src, out / name)
    found = checkpoints_in(work / "unet")
    if found and not part_files(out):
        split_checkpoint(found[-1] / "vidiff.safetensors", out, tag=found[-1].name)


def environment() -> dict:
    import diffusers
    import torch

    cuda = torch.cuda.is_available()
    return {"device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
            "diffusers": diffusers.__version__, "diffusers_from": str(Path(diffusers.__file__).parent),
            "python": sys.version.split()[0], "cpu_threads": torch.get_num_threads()}


def check_outputs(out: Path) -> list[str]:
    """Problems with what would come back (more than 8 files, or a file over 16 MiB)."""
    files = [p for p in out.iterdir() if p.is_file() and not p.name.startswith(".")]
    problems = [f"{len(files)} files in {out}, at most {MAX_FILES} come back"] if len(files) > MAX_FILES else []
    problems += [f"{p.name}: {p.stat().st_size / 2**20:.1f} MiB, over 16 MiB" for p in files
                 if p.stat().st_size > MAX_FILE_BYTES]
    return problems


def run(cfg: DeviceRunConfig, t0: float | None = None) -> dict:
    """One device call (resuming earlier ones in `cfg.work`); returns the report."""
    import torch

    from . import stages
    from .pack import unpack_clips

    cfg.check()
    clock = Clock(t0 if t0 is not None else time.time(), cfg.budget_s)
    cfg.out.mkdir(parents=True, exist_ok=True)
    cfg.work.mkdir(parents=True, exist_ok=True)
    report = Report(cfg.work, cfg.out)
    r = report.data
    call = {"call": len(r.get("calls", [])) + 1, "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "budget_s": cfg.budget_s, "config": {k: str(v) for k, v in asdict(cfg).items()}, "stages": {}}
    r.setdefault("calls", []).append(call)
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    if cuda:  # fixed shapes throughout: let cuDNN pick its kernels; TF32 for the fp32 autoencoder
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    data = cfg.work / "data"
    try:
        call.update(environment())  # imports diffusers: the carried wheel, on the device
        pack = unpack_clips(cfg.pack, data)
        r["pack"] = {"clips": len(pack["clips"]), "frames": sum(pack["clips"].values()), "size": pack["size"],
                     "quality": pack["quality"], "validation_left_out": len(pack["validation_left_out"])}
        restore_outputs(cfg.work, cfg.out)
        plan = [("bench", lambda: stages.bench_stage(cfg.bench, r, cfg.out, cfg.work, clock.at(cfg.bench_until))),
                ("autoencoder", lambda: stages.autoencoder_stage(cfg, r, data, cfg.work, cfg.out,
                                                                 clock.at(cfg.autoencoder_until), device, report.save)),
                ("latents", lambda: stages.latents_stage(cfg, r, data, cfg.work, clock.at(cfg.latents_until), device)),
                ("text_encoder", lambda: stages.text_encoder_stage(cfg, r)),
                ("unet", lambda: stages.unet_stage(cfg, r, cfg.work, cfg.out, clock.at(1.0) - cfg.reserve_s, cuda,
                                                   report.save))]
        for name, stage in plan:
            began = time.monotonic()
            print(f"[device_run {clock.elapsed():6.1f} s] {name}", flush=True)
            try:
                stage()
            except Exception:
                call["stages"][name] = {"error": traceback.format_exc(limit=-6)[-3000:]}
                traceback.print_exc()  # into the log too
                if name != "bench":  # the benchmark is independent of training: go on without it
                    raise
            else:
                call["stages"][name] = round(time.monotonic() - began, 1)
            report.save()
    except Exception:
        call["error"] = traceback.format_exc(limit=-6)[-3000:]
        raise
    finally:
        call["seconds"] = round(clock.elapsed(), 1)
        report.save()
        call["output_problems"] = check_outputs(cfg.out)
        call["outputs"] = sorted(p.name for p in cfg.out.iterdir() if p.is_file() and not p.name.startswith("."))
        report.save()
    return r


def config_from_args(argv: list[str] | None = None) -> DeviceRunConfig:
    d = DeviceRunConfig()
    p = argparse.ArgumentParser(prog="python -m vidiff_model.device_run.run", description=__doc__.split("\n")[0])
    p.add_argument("--budget", type=float, default=d.budget_s, help="seconds this call may take in all")
    p.add_argument("--pack", type=Path, default=d.pack, help="the carried folder (scripts/device_pack.sh)")
    p.add_argument("--work", type=Path, default=d.work, help="state kept between calls")
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or d.out), help="files to return ($OUT)")
    p.add_argument("--micro", action="store_true", help="test scale: a few steps of every stage, smoke benchmark")
    p.add_argument("--bench", choices=BENCH_MODES, default=None, help="default: full (micro: smoke)")
    for f in fields(DeviceRunConfig):  # every numeric setting: --ae-batch 32, --unet-lr 5e-4, ...
        if f.type in ("int", "float") and f.name != "budget_s":
            p.add_argument(f"--{f.name.replace('_', '-')}", type=int if f.type == "int" else float, default=None)
    a = p.parse_args(argv)
    cfg = replace(d, budget_s=a.budget, pack=a.pack, work=a.work, out=a.out)
    if a.micro:
        cfg = micro(cfg)
    given = {f.name: getattr(a, f.name) for f in fields(DeviceRunConfig)
             if f.name not in ("budget_s", "pack", "work", "out", "micro") and getattr(a, f.name, None) is not None}
    return replace(cfg, **given)


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_args(argv)
    t0 = float(os.environ["DEVICE_RUN_T0"]) if os.environ.get("DEVICE_RUN_T0") else None  # set by the bash script
    try:
        report = run(cfg, t0)
    except Exception as e:  # noqa: BLE001 - the report already holds the traceback; say it in one line too
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    unet = report.get("unet", {})
    print(f"device run: autoencoder {report.get('autoencoder', {}).get('steps')} steps, UNet {unet.get('steps')} "
          f"steps at batch {unet.get('batch')}, last loss {unet.get('loss_last')}; files in {cfg.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
