"""The training loop, on Hugging Face `accelerate` (one process, several GPUs, several nodes).

    accelerate launch -m vidiff_model.train --config my.yaml      # or: torchrun ... / python -m ...

Per optimizer step, for each of `gradient_accumulation` micro-batches:
  1. read the micro-batch's samples (a fixed function of step, rank and seed: `StepSampler`);
  2. encode: VAE latents (target scaled, source raw; zeros where the video is dropped), CLIP text and
     image embeddings (frozen);
  3. noise the target at t ~ U{0..999} with the model's schedule (noise and t seeded by the sample's
     index, so a resumed run, or the same samples split over more processes, repeats them);
  4. predict ε and take the mean squared error; backward.
Then clip, step, update the EMA; log, validate and save on their schedules.
Checkpoints (`output_dir/checkpoints/step-N/`) hold the engine state (weights, optimizer, RNG), the EMA
and a ready-to-load `vidiff.safetensors`; they appear atomically (written under a temporary name, then
renamed), so a run killed at any moment resumes from the last complete one.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ..checkpoints.native import save_vidiff
from ..errors import VIDiffError
from ..sampling import alphas_cumprod
from .config import TrainConfig
from .ema import EMA
from .encoders import FrozenEncoders
from .errors import DataError, TrainConfigError
from .run_log import RunLog
from .setup_model import TrainingModule, starting_model, trainable_parameters
from .triplets import StepSampler, TripletStream, collate, warn
from .validation import write_samples

EXPORT_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
RESUME_KEYS = ("seed", "batch_size", "gradient_accumulation", "world_size")  # what fixes the data order


def checkpoints_in(output_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temporary folders of an interrupted save are ignored)."""
    folder = output_dir / "checkpoints"
    if not folder.is_dir():
        return []
    done = [p for p in folder.iterdir() if p.name.startswith("step-") and (p / "trainer_state.json").exists()]
    return sorted(done, key=lambda p: int(p.name.split("-")[1]))


def _sample_noise(seed: int, index: int, shape: tuple[int, ...]) -> tuple[torch.Tensor, int]:
    """The noise and timestep of sample `index`: a function of the sample alone, so resuming, or
    splitting a batch over processes, draws the same ones."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + index) * 257 + 17)
    return torch.randn(shape, generator=g), int(torch.randint(0, 1000, (), generator=g))


def _export(model, ema: EMA | None, path: Path, dtype: torch.dtype, metadata: dict[str, str]) -> None:
    """The project's single-file checkpoint, with the EMA weights when there is an EMA."""
    if ema is not None:
        import copy

        model = copy.deepcopy(model)
        ema.copy_to(model)
    save_vidiff(model, path, dtype=dtype, metadata=metadata)


def learning_rate_at(cfg: TrainConfig, step: int) -> float:
    """The learning rate of step `step` (0-based): a linear warm-up, then constant or a cosine decay that
    reaches min_learning_rate at the last step (max_steps - 1)."""
    warm = cfg.warmup_steps
    if step < warm:
        return cfg.learning_rate * (step + 1) / warm
    if cfg.lr_schedule == "constant":
        return cfg.learning_rate
    done = min((step - warm) / max(cfg.max_steps - 1 - warm, 1), 1.0)
    return cfg.min_learning_rate + (cfg.learning_rate - cfg.min_learning_rate) * 0.5 * (1 + math.cos(math.pi * done))


class Trainer:
    def __init__(self, cfg: TrainConfig):
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        self.cfg = cfg
        self.out = Path(cfg.output_dir)
        self.accelerator = Accelerator(cpu=cfg.cpu, mixed_precision=cfg.mixed_precision,
                                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)])
        acc = self.accelerator
        self.rank, self.world = acc.process_index, acc.num_processes
        self.main = acc.is_main_process
        torch.manual_seed(cfg.seed)  # a random start is the same model on every process
        need_image = cfg.stage == "v2v" and cfg.model.image_instruction and cfg.data.image_instruction > 0
        self.encoders = FrozenEncoders(cfg.encoders, acc.device, need_image=need_image)
        # The main process probes the data first and writes the frame index; the others then read it.
        index = self.out / "data_index.json"
        with acc.main_process_first():
            self.stream = TripletStream(cfg.data, cfg.stage, cfg.seed, TokenCount(self.encoders.text.tokenizer),
                                        index if self.main or index.exists() else None)
        model, self.notes = starting_model(cfg, self.encoders.text_width, self.encoders.image_width)
        if cfg.gradient_checkpointing:
            model.unet.enable_gradient_checkpointing()
        self.params = trainable_parameters(model, cfg.stage)
        self.model = model
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        self.module, self.optimizer = acc.prepare(TrainingModule(model), self.optimizer)
        self.ema = EMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.alphas = alphas_cumprod(model.config.beta_schedule).float().to(acc.device)  # ᾱ_t of the model's schedule
        self.scale = model.config.latent_scaling_factor
        self.step = 0

    # -- checkpoints ----------------------------------------------------------------------------------
    def _state(self) -> dict:
        return {"step": self.step, "seed": self.cfg.seed, "batch_size": self.cfg.batch_size,
                "gradient_accumulation": self.cfg.gradient_accumulation, "world_size": self.world,
                "stage": self.cfg.stage}

    def resume(self) -> int:
        found = checkpoints_in(self.out)
        if not found:
            return 0
        last = found[-1]
        state = json.loads((last / "trainer_state.json").read_text())
        now = self._state()
        changed = [f"{k} {state.get(k)} → {now[k]}" for k in RESUME_KEYS if state.get(k) != now[k]]
        if changed:
            raise TrainConfigError(f"{last}: resuming needs the settings that fix the data order unchanged "
                                   f"({', '.join(changed)}); use a new output_dir to start over")
        self.accelerator.load_state(str(last))
        if self.ema is not None:
            from safetensors.torch import load_file

            self.ema.load_state_dict(load_file(str(last / "ema.safetensors")))
        self.step = int(state["step"])
        if self.main:
            warn(f"resumed from {last} at step {self.step}")
        return self.step

    def save(self) -> Path:
        acc, folder = self.accelerator, self.out / "checkpoints"
        final, tmp = folder / f"step-{self.step:07d}", folder / f".tmp-step-{self.step:07d}"
        if self.main:
            shutil.rmtree(tmp, ignore_errors=True)
        acc.wait_for_everyone()
        acc.save_state(str(tmp))
        if self.main:
            if self.ema is not None:
                from safetensors.torch import save_file

                save_file(self.ema.state_dict(), str(tmp / "ema.safetensors"))
            _export(self.model, self.ema, tmp / "vidiff.safetensors", EXPORT_DTYPES[self.cfg.export_dtype],
                    self._metadata())
            (tmp / "trainer_state.json").write_text(json.dumps(self._state(), indent=1))
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            for old in checkpoints_in(self.out)[:-self.cfg.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()
        return final

    def _metadata(self) -> dict[str, str]:
        return {"trained_by": "vidiff_model.train", "stage": self.cfg.stage, "step": str(self.step),
                "ema": str(self.ema is not None), "start": "; ".join(self.notes)}

    # -- one step -------------------------------------------------------------------------------------
    def loss(self, batch: dict) -> torch.Tensor:
        device, enc = self.accelerator.device, self.encoders
        has_source = batch["has_source"].to(device)
        if batch["latent"]:  # precomputed raw latents (B, F, 4, h, w); dropped videos are already zeros
            x0 = batch["target"].to(device).transpose(1, 2) * self.scale  # (B, 4, F, h, w) scaled
            source = batch["source"].to(device).transpose(1, 2)
        else:
            x0 = enc.encode_video(batch["target"]) * self.scale  # (B, 4, F, h, w) scaled
            source = torch.zeros_like(x0)  # raw latents; zeros = the null video
            if bool(has_source.any()):
                source[has_source] = enc.encode_video(batch["source"][has_source.cpu()])
        text = enc.encode_text(batch["text"])  # (B, 77, D)
        image = enc.encode_images(batch["image"]) if enc.image is not None else None  # (B, E)
        drawn = [_sample_noise(self.cfg.seed, int(i), tuple(x0.shape[1:])) for i in batch["index"]]
        noise = torch.stack([n for n, _ in drawn]).to(device)
        t = torch.tensor([t for _, t in drawn], device=device)
        a = self.alphas[t].view(-1, 1, 1, 1, 1)
        noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
        with self.accelerator.autocast():
            eps = self.module(noisy, source, t, text, image, batch["has_image"].to(device))
        per_sample = (eps.float() - noise).pow(2).flatten(1).mean(1)  # (B,) ε error
        snr = a.flatten() / (1 - a.flatten())
        v_model = self.model.config.prediction_type == "v_prediction"
        if v_model:
            # The model's ε is √(1−ᾱ)·x_t + √ᾱ·v̂, so |ε̂ − ε|²/ᾱ = |v̂ − v|²: the v loss, whose x0 weight is SNR + 1
            # (never below 1: the high-noise steps where sampling starts keep their weight).
            per_sample = per_sample / a.flatten()
        if self.cfg.min_snr_gamma > 0:
            # ε-prediction weights the x0 error by SNR, so low-noise steps dominate; min-SNR-γ caps the weight
            # at γ: min(SNR, γ)/SNR on the ε loss, min(SNR, γ)/(SNR + 1) on the v loss.
            per_sample = per_sample * snr.clamp(max=self.cfg.min_snr_gamma) / (snr + 1 if v_model else snr)
        return per_sample.mean()

    def learning_rate(self) -> float:
        return learning_rate_at(self.cfg, self.step)

    # -- the run --------------------------------------------------------------------------------------
    def run(self) -> Path:
        cfg, acc = self.cfg, self.accelerator
        start = self.resume()
        log = RunLog(self.out, cfg.log, start) if self.main else None
        loader = torch.utils.data.DataLoader(
            self.stream, batch_size=cfg.batch_size, collate_fn=collate, num_workers=cfg.data.num_workers,
            sampler=StepSampler(start, cfg.batch_size, cfg.gradient_accumulation, self.rank, self.world))
        batches = iter(loader)
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.max_steps, initial=start, desc="VIDiff train", disable=not self.main, unit="step")
        try:
            self.module.train()
            clock = time.perf_counter()
            while self.step < cfg.max_steps:
                for group in self.optimizer.param_groups:
                    group["lr"] = self.learning_rate()
                total = torch.zeros((), device=acc.device)
                for micro in range(cfg.gradient_accumulation):
                    batch = _next_batch(batches)
                    last = micro == cfg.gradient_accumulation - 1
                    with acc.no_sync(self.module) if not last else contextlib.nullcontext():
                        loss = self.loss(batch)
                        acc.backward(loss / cfg.gradient_accumulation)
                    total += loss.detach() / cfg.gradient_accumulation
                if cfg.max_grad_norm > 0:
                    acc.clip_grad_norm_(self.params, cfg.max_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                if self.ema is not None:
                    self.ema.update(self.model)
                self.step += 1
                mean_loss = float(acc.gather(total[None]).mean())
                if not math.isfinite(mean_loss):
                    raise VIDiffError(f"step {self.step}: the loss is {mean_loss}; the run stops here (its last checkpoint "
                                      "is intact): lower learning_rate, or use bf16 instead of fp16")
                bar.update(1)
                bar.set_postfix(loss=f"{mean_loss:.4f}")
                if self.main and (self.step % cfg.log_every == 0 or self.step == cfg.max_steps):
                    elapsed, clock = time.perf_counter() - clock, time.perf_counter()
                    log.write(self.step, {"loss": mean_loss, "lr": self.learning_rate(),
                                          "samples_per_s": cfg.log_every * cfg.batch_size * cfg.gradient_accumulation
                                          * self.world / max(elapsed, 1e-9),
                                          "skipped_items": self.stream.skipped + len(self.stream.bad)})
                if self.step % cfg.save_every == 0 or self.step == cfg.max_steps:
                    self.save()
                every = cfg.validation.every
                if self.main and cfg.validation.samples > 0 and (
                        (every and self.step % every == 0) or self.step == cfg.max_steps):
                    self._validate()
                acc.wait_for_everyone()
        finally:
            bar.close()  # ends the bar's line, so an error prints on its own
        result = self.out / "vidiff.safetensors"
        if self.main:
            log.close()
            _export(self.model, self.ema, result, EXPORT_DTYPES[cfg.export_dtype], self._metadata())
        acc.wait_for_everyone()
        return result

    def _validate(self) -> None:
        import copy

        model = self.model
        if self.ema is not None:
            model = copy.deepcopy(model)
            self.ema.copy_to(model)
        write_samples(model, self.encoders, self.stream, self.cfg.validation, self.out / "samples", self.step)


def _next_batch(batches):
    """The next batch; a DataError from a loader worker comes back wrapped with the worker's traceback:
    keep the one line that names the file."""
    try:
        return next(batches)
    except DataError as e:
        lines = [line for line in str(e).splitlines() if "DataError: " in line]
        if not lines:  # raised in this process: already one line
            raise
        raise DataError(message=lines[-1].split("DataError: ", 1)[1]) from None


class TokenCount:
    """Tokens of an instruction under the text encoder's tokenizer (picklable, for loader workers)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, text: str) -> int:
        return len(self.tokenizer(text).input_ids)


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) training; returns the path of the final single-file checkpoint."""
    Path(cfg.output_dir).mkdir(parents=True, exist_ok=True)
    (Path(cfg.output_dir) / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    trainer = Trainer(cfg)
    return trainer.run()
