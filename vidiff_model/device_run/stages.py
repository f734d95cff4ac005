"""The stages of a device run (`run.py`): benchmark, autoencoder, latents, UNet.

Each stage takes the run's config, its report (a dict, saved after every stage and UNet checkpoint), and a
deadline (`time.monotonic()`), stops by it, and records what it did in its own report entry. Every stage
resumes: the autoencoder from its `state.pt`, the latents clip by clip, the UNet from the trainer's last
checkpoint; a finished stage is skipped by later calls.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch

from ..mini import PACK_ROOT
from .files import BENCH_FILE, UNET_LOG_FILE, VAE_FILE, split_checkpoint

MINI_YAML = PACK_ROOT / "configs" / "train" / "mini.yaml"
PROBE_SCHEDULE = 10**9  # the probe's cosine schedule: flat over its few steps
UNBOUNDED_STEPS = 10**7  # the UNet's max_steps when only the clock ends it


def _subsample(rows: list, keep: int = 200) -> list:
    """At most `keep` rows, evenly spaced, the last one kept."""
    if len(rows) <= keep:
        return rows
    step = len(rows) / keep
    return [rows[int(i * step)] for i in range(keep - 1)] + [rows[-1]]


# -- benchmark -------------------------------------------------------------------------------------------
def bench_stage(mode: str, report: dict, out: Path, work: Path, deadline: float) -> None:
    """`bench/sampling.py --full` (or `--smoke`) in its own process group, killed at the deadline; its output
    goes straight to `out/bench_sampling.txt`, so a cut run still returns what it printed.

    Args:
        mode: full | smoke | none.
    """
    st = report.setdefault("bench", {})
    if mode == "none" or st.get("done"):
        return
    args = [sys.executable, str(PACK_ROOT / "bench" / "sampling.py")]
    args += ["--full", "--steps", "20"] if mode == "full" else ["--smoke"]
    start = time.monotonic()
    with open(out / BENCH_FILE, "w") as f:
        proc = subprocess.Popen(args, cwd=PACK_ROOT, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=max(deadline - time.monotonic(), 1.0))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its measurement children too
            proc.wait()
            rc = None
    if (work / BENCH_FILE).resolve() != (out / BENCH_FILE).resolve():
        shutil.copy2(out / BENCH_FILE, work / BENCH_FILE)
    st.update(args=args[1:], returncode=rc, timed_out=rc is None, seconds=round(time.monotonic() - start, 1),
              done=rc == 0)
    print(f"bench: {'done' if rc == 0 else 'timed out' if rc is None else f'failed (exit {rc})'} "
          f"in {st['seconds']} s -> {out / BENCH_FILE}", flush=True)


# -- autoencoder -----------------------------------------------------------------------------------------
def autoencoder_stage(cfg, report: dict, data: Path, work: Path, out: Path, deadline: float, device: str,
                      save_report: Callable[[], None] = lambda: None) -> None:
    """Train the autoencoder (encoder and decoder) from scratch at `cfg.ae_crop` crops, its cosine schedule
    sized by a timing probe to end at the deadline, then export the host TAESD file (vae_scale/vae_shift from
    the training frames, as `mini.autoencoder.export` sets them) into `out`. The schedule is saved at once, so
    a call cut during the training resumes on the same one."""
    from ..mini.autoencoder import train

    st = report.setdefault("autoencoder", {})
    if st.get("done"):
        return
    folder = work / "vae"
    crop = min(cfg.ae_crop, int(report["pack"]["size"]))
    kw = dict(batch=cfg.ae_batch, crop=crop, lr=cfg.ae_lr, device=device, seed=0)
    start = time.monotonic()
    export_s = min(10.0, 0.1 * max(deadline - start, 0.0))  # latent statistics and the file, after the steps
    if "schedule_steps" not in st:
        if cfg.ae_max_steps:
            schedule = cfg.ae_max_steps
        else:
            probe = cfg.ae_probe_steps
            train(data, folder, steps=PROBE_SCHEDULE, stop_at=probe, export_file=False, **kw)
            # the log's s/step of its last 25 steps leaves out imports, start-up and cuDNN's first-step tuning
            rows = [line.split(",") for line in (folder / "log.csv").read_text().splitlines() if line]
            per_step = float(rows[-1][2]) if len(rows) >= 2 else (time.monotonic() - start) / probe
            schedule = probe + max(int((deadline - export_s - time.monotonic()) / max(per_step, 1e-4)), 0)
            st["probe_s_per_step"] = round(per_step, 4)
        st.update(schedule_steps=schedule, batch=cfg.ae_batch, crop=crop, lr=cfg.ae_lr)
        save_report()
    path = train(data, folder, steps=st["schedule_steps"], deadline=deadline - export_s, **kw)
    steps = int(torch.load(folder / "state.pt", weights_only=True, map_location="cpu")["step"])
    rows = [line.split(",") for line in (folder / "log.csv").read_text().splitlines() if line]
    st.update(json.loads((folder / "vae_report.json").read_text()))
    st.update(steps=steps, finished_schedule=steps >= st["schedule_steps"], done=True,
              seconds=round(st.get("seconds", 0) + time.monotonic() - start, 1),
              losses=_subsample([[int(r[0]), float(r[1])] for r in rows]), file=VAE_FILE)
    shutil.copy2(path, out / VAE_FILE)


# -- latents ---------------------------------------------------------------------------------------------
def latents_stage(cfg, report: dict, data: Path, work: Path, deadline: float, device: str) -> None:
    """Every training task's latents per 16-frame chunk, from the new autoencoder (`mini.latents`)."""
    from ..mini.latents import precompute

    st = report.setdefault("latents", {})
    if st.get("complete"):
        return
    start = time.monotonic()
    record = precompute(data, work / "vae" / VAE_FILE, work / "latents", cfg.chunks, device=device,
                        workers=cfg.latent_workers, deadline=deadline)
    st.update(clips=len(list((work / "latents").glob("*.safetensors"))), chunks=cfg.chunks,
              complete=record["complete"], tasks=record["tasks"],
              seconds=round(st.get("seconds", 0) + time.monotonic() - start, 1))


# -- UNet ------------------------------------------------------------------------------------------------
def unet_config(cfg, work: Path, tokenizer: Path, size: int, cuda: bool, start_step: int):
    """configs/train/mini.yaml (model, tasks and weights, phrasings, dropout, seed, schedule, EMA) with this
    run's paths, batch, learning rate, precision and checkpoint interval."""
    import yaml

    from ..training.config import TrainConfig, from_dict

    raw = yaml.safe_load(MINI_YAML.read_text())
    per_call = cfg.unet_steps_per_call
    raw.update(output_dir=str(work / "unet"), batch_size=cfg.unet_batch, learning_rate=cfg.unet_lr,
               save_every=cfg.save_every, log_every=cfg.log_every, cpu=not cuda,
               mixed_precision=cfg.mixed_precision if cuda else "no",
               max_steps=start_step + per_call if per_call else UNBOUNDED_STEPS)
    raw["encoders"] = {"text_encoder": str(cfg.text_encoder), "tokenizer": str(tokenizer)}
    raw["data"].update(frames=cfg.frames, height=size, width=size, num_workers=cfg.loader_workers,
                       sources=[{"type": "latents", "path": str(work / "latents")}])
    config = from_dict(TrainConfig, raw, "config", MINI_YAML.parent.resolve())
    config.check()
    return config


def _deadline_trainer(config, deadline: float, on_save: Callable[[Path, int], None]):
    from ..training.trainer import Trainer

    class DeadlineTrainer(Trainer):
        """The project's trainer, ended by the clock: the step that begins after the deadline becomes the
        last one (`run` then saves a checkpoint and exports, as at max_steps); every checkpoint is handed to
        `on_save` (which publishes it, so a run cut later still returns it)."""

        def loss(self, batch):
            if time.monotonic() >= deadline:
                self.cfg.max_steps = min(self.cfg.max_steps, self.step + 1)  # mini.yaml's rate is constant
            return super().loss(batch)

        def save(self):
            folder = super().save()
            on_save(folder / "vidiff.safetensors", self.step)
            return folder

    return DeadlineTrainer(config)


def text_encoder_stage(cfg, report: dict) -> None:
    """The seeded text encoder, generated here (247 MB: too big to carry; `mini.text_encoder`)."""
    from ..mini.text_encoder import ensure_clip_l

    start = time.monotonic()
    path = ensure_clip_l(cfg.text_encoder)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    report["text_encoder"] = {"path": str(path), "sha256": h.hexdigest(), "seconds": round(time.monotonic() - start, 1)}


def unet_stage(cfg, report: dict, work: Path, out: Path, deadline: float, cuda: bool,
               save_report: Callable[[], None]) -> None:
    """Train (or resume) the UNet on the latents until the deadline; every checkpoint goes to `out` in parts."""
    from ..training.run_log import read_log
    from ..training.trainer import checkpoints_in

    st = report.setdefault("unet", {})
    folder = work / "unet"
    found = checkpoints_in(folder)
    start_step = int(json.loads((found[-1] / "trainer_state.json").read_text())["step"]) if found else 0
    config = unet_config(cfg, work, cfg.pack / "tokenizer", int(report["pack"]["size"]), cuda, start_step)
    start = time.monotonic()

    published = [-1]

    def publish(path: Path, step: int) -> None:
        if step == published[0]:  # the final export repeats the last checkpoint's weights
            return
        published[0] = step
        split_checkpoint(path, out, tag=f"step {step}")
        if (folder / "log.csv").exists():
            shutil.copy2(folder / "log.csv", out / UNET_LOG_FILE)
        st.update(steps=step, seconds_this_call=round(time.monotonic() - start, 1))
        save_report()

    st.setdefault("calls", []).append({"resumed_from": start_step})
    st.update(batch=config.batch_size, lr=config.learning_rate, frames=config.data.frames,
              mixed_precision=config.mixed_precision, ema_decay=config.ema_decay, seed=config.seed,
              prediction_type=config.model.prediction_type)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(asdict(config), indent=1))
    trainer = _deadline_trainer(config, deadline, publish)
    ready = time.monotonic()  # text encoder loaded, data indexed, model built
    result = trainer.run()
    loop = time.monotonic() - ready  # steps, checkpoints and the final export
    publish(result, trainer.step)
    took = time.monotonic() - start
    rows = read_log(folder)
    st["calls"][-1].update(steps=trainer.step, seconds=round(took, 1), setup_seconds=round(ready - start, 1),
                           s_per_step=round(loop / max(trainer.step - start_step, 1), 4))
    st.update(steps=trainer.step, samples_seen=trainer.step * config.batch_size,
              seconds=round(st.get("seconds", 0) + took, 1),
              loss_first=rows[0]["loss"] if rows else None, loss_last=rows[-1]["loss"] if rows else None,
              loss_last_10=sum(r["loss"] for r in rows[-10:]) / max(len(rows[-10:]), 1) if rows else None,
              losses=_subsample([[int(r["step"]), r["loss"]] for r in rows]))
