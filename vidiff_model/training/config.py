"""The training config: typed dataclasses read from YAML, every key checked.

    python -m vidiff_model.train --config configs/train/tiny_cpu.yaml

An unknown or mistyped key is an error that names it (a typo must not silently fall back to a
default); relative paths are resolved against the YAML file's folder.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from .errors import TrainConfigError
from .sources import STYLE_TASK_PREFIX, TASKS


@dataclass
class SourceConfig:
    """One dataset (see `sources.py` for the layouts)."""

    type: str  # videos | paired | segmentation | editing | text_video | latents
    path: str | None = None  # videos: the folder; latents: the folder of vidiff_model.mini.latents
    tasks: list[str] | None = None  # videos: which of recolor/inpaint/dehaze/deblur to make (default all); latents: which to use
    root: str | None = None  # paired, segmentation
    task: str | None = None  # paired: dehaze or deblur
    input: str | None = None  # paired: e.g. "hazy/{clip}"
    target: str | None = None  # paired: e.g. "gt/{clip}"
    images: str | None = None  # segmentation: e.g. "JPEGImages/480p/{clip}"
    masks: str | None = None  # segmentation: e.g. "Annotations/480p/{clip}"
    names: str | None = None  # segmentation: meta_expressions.json or {clip: {obj_id: name}}
    jsonl: str | None = None  # editing, text_video


@dataclass
class DataConfig:
    sources: list[SourceConfig] = field(default_factory=list)
    task_weights: dict[str, float] = field(default_factory=dict)  # empty: every available task equally
    frames: int = 16
    height: int = 256
    width: int = 256
    frame_stride: int = 1
    on_bad_data: str = "stop"  # stop: the run ends naming the file; skip: reported, left out, counted
    drop_text: float = 0.05  # condition dropout for classifier-free guidance (InstructPix2Pix's 5 % each)
    drop_video: float = 0.05
    drop_both: float = 0.05
    image_instruction: float = 0.1  # chance of an image instruction (an augmented target frame) ...
    image_only: float = 0.5  # ... and, given one, the chance the text is left out
    first_frames: float = 0.1  # chance of a long-video sample: "Based on the first n frames"
    num_workers: int = 0


@dataclass
class ModelInitConfig:
    """Starting weights: a VIDiff file, or SD-1.5/IP2P single file + AnimateDiff motion module, or random."""

    vidiff: str | None = None
    unet: str | None = None
    motion_module: str | None = None
    use_ema: bool = False  # take the single file's EMA UNet weights
    random: str | None = None  # "tiny", "mini" or "sd15": fresh weights (tests, vidiff-mini, ablations)
    image_instruction: bool = True  # stage 3: give the model an image-instruction MLP (fresh if absent)
    prediction_type: str | None = None  # train the UNet to output this (epsilon | v_prediction); None: the start's


@dataclass
class EncodersConfig:
    text_encoder: str = ""  # CLIPTextModel folder, or a CLIP-L single file (ComfyUI's clip_l, an SD-1.5 file)
    tokenizer: str | None = None  # default: the text encoder's folder; needed with a single file
    image_encoder: str | None = None  # CLIPVisionModelWithProjection folder, for image instructions
    vae: str = ""  # AutoencoderKL folder, or an SD VAE single file (ComfyUI's models/vae, an SD-1.5/IP2P file)
    latent_cache: str | None = None  # folder: reuse VAE latents of frames seen before


@dataclass
class ValidationConfig:
    every: int = 0  # steps between validation samples; 0: only at the end
    samples: int = 2
    steps: int = 20
    video_guidance: float = 1.5
    text_guidance: float = 7.5


@dataclass
class TrainConfig:
    output_dir: str
    stage: str = "v2v"  # t2v: temporal layers only; v2v: the whole UNet + image MLP
    model: ModelInitConfig = field(default_factory=ModelInitConfig)
    encoders: EncodersConfig = field(default_factory=EncodersConfig)
    data: DataConfig = field(default_factory=DataConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    seed: int = 0
    max_steps: int = 1000
    batch_size: int = 1  # per process
    gradient_accumulation: int = 1
    learning_rate: float = 1e-4
    warmup_steps: int = 0
    lr_schedule: str = "constant"  # constant | cosine (to min_learning_rate at max_steps, after the warm-up)
    min_learning_rate: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    min_snr_gamma: float = 0.0  # > 0: min-SNR-γ loss weighting (Hang et al. 2023), min(SNR, γ)/SNR per sample; 0: plain MSE
    mixed_precision: str = "no"  # no | fp16 | bf16
    gradient_checkpointing: bool = False
    ema_decay: float = 0.0  # 0: no EMA; e.g. 0.9999
    save_every: int = 500
    keep_checkpoints: int = 2
    export_dtype: str = "fp16"  # dtype of the single-file checkpoints written (fp16, bf16 or fp32)
    log: str = "csv"  # csv | tensorboard (needs the tensorboard package)
    log_every: int = 1
    cpu: bool = False  # train on the CPU even where a GPU is present

    def check(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise TrainConfigError(message)

        need(self.stage in ("t2v", "v2v"), f"stage: {self.stage!r}; choose t2v (stage 2) or v2v (stage 3)")
        need(self.mixed_precision in ("no", "fp16", "bf16"), f"mixed_precision: {self.mixed_precision!r}; "
                                                             "choose no, fp16 or bf16")
        need(self.export_dtype in ("fp16", "bf16", "fp32"), f"export_dtype: {self.export_dtype!r}; "
                                                             "choose fp16, bf16 or fp32")
        need(self.log in ("csv", "tensorboard"), f"log: {self.log!r}; choose csv or tensorboard")
        need(self.data.on_bad_data in ("stop", "skip"), f"data.on_bad_data: {self.data.on_bad_data!r}; "
                                                        "choose stop or skip")
        for key in ("max_steps", "batch_size", "gradient_accumulation", "save_every", "keep_checkpoints",
                    "log_every"):
            need(getattr(self, key) >= 1, f"{key}: must be at least 1, got {getattr(self, key)}")
        need(self.learning_rate > 0, f"learning_rate: must be positive, got {self.learning_rate}")
        need(self.lr_schedule in ("constant", "cosine"), f"lr_schedule: {self.lr_schedule!r}; choose constant or cosine")
        need(0 <= self.min_learning_rate <= self.learning_rate,
             f"min_learning_rate: must be in [0, learning_rate = {self.learning_rate}], got {self.min_learning_rate}")
        need(0 <= self.ema_decay < 1, f"ema_decay: must be in [0, 1), got {self.ema_decay}")
        need(self.min_snr_gamma >= 0, f"min_snr_gamma: 0 (off) or a positive γ such as 5, got {self.min_snr_gamma}")
        d = self.data
        need(d.frames >= 1 and d.frame_stride >= 1, "data.frames and data.frame_stride must be at least 1")
        need(d.height % 8 == 0 and d.width % 8 == 0 and d.height > 0 and d.width > 0,
             f"data.height/width: {d.height}x{d.width}; both must be positive multiples of 8 (the VAE's factor)")
        for key in ("drop_text", "drop_video", "drop_both", "image_instruction", "image_only", "first_frames"):
            need(0 <= getattr(d, key) <= 1, f"data.{key}: a probability in [0, 1], got {getattr(d, key)}")
        need(d.drop_text + d.drop_video + d.drop_both <= 1, "data.drop_text + drop_video + drop_both exceeds 1")
        need(bool(d.sources), "data.sources: give at least one dataset")
        for task in d.task_weights:
            need(task in TASKS or task.startswith(STYLE_TASK_PREFIX),
                 f"data.task_weights: unknown task {task!r}; tasks are {', '.join(TASKS)} and style:NAME")
        m = self.model
        starts = [bool(m.vidiff), bool(m.unet or m.motion_module), bool(m.random)]
        need(sum(starts) == 1, "model: give exactly one start: vidiff: FILE, or unet: FILE with motion_module: FILE, "
                               "or random: tiny|mini|sd15")
        need(not (m.unet or m.motion_module) or bool(m.unet and m.motion_module),
             "model: unet and motion_module go together (SD-1.5/IP2P single file + AnimateDiff motion module)")
        need(m.random in (None, "tiny", "mini", "sd15"), f"model.random: {m.random!r}; choose tiny, mini or sd15")
        need(bool(self.encoders.text_encoder), "encoders.text_encoder: a local CLIP text encoder folder is required")
        only_latents = all(src.type == "latents" for src in d.sources)
        need(bool(self.encoders.vae) or (only_latents and self.validation.samples == 0),
             "encoders.vae: a local SD VAE (file or AutoencoderKL folder) is required (only a run on precomputed "
             "latents with validation.samples: 0 does without)")


PATH_KEYS = {"path", "root", "jsonl", "vidiff", "unet", "motion_module", "text_encoder", "tokenizer",
             "image_encoder", "vae", "latent_cache", "output_dir"}


def _convert(tp, value, where: str, base: Path | None):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, where, base)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise TrainConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return from_dict(tp, value, where, base)
    if origin is list:
        if not isinstance(value, list):
            raise TrainConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, f"{where}[{i}]", base) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise TrainConfigError(f"{where}: expected a mapping, got {value!r}")
        _, item = typing.get_args(tp)
        return {str(k): _convert(item, v, f"{where}.{k}", base) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise TrainConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is str and isinstance(value, str):
        key = where.rsplit(".", 1)[-1]
        if base is not None and key in PATH_KEYS and value and not Path(value).expanduser().is_absolute():
            return str((base / value).resolve())
        return str(Path(value).expanduser()) if key in PATH_KEYS and value else value
    raise TrainConfigError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def from_dict(cls, raw: dict, where: str = "config", base: Path | None = None):
    """`cls(**raw)` with every key known and every value of the declared type."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise TrainConfigError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                               f"known: {', '.join(fields)}")
    missing = [n for n, f in fields.items() if n not in raw and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise TrainConfigError(f"{where}: missing {', '.join(missing)}")
    return cls(**{k: _convert(hints[k], v, f"{where}.{k}" if where != "config" else k, base) for k, v in raw.items()})


def load_config(path: str | Path, overrides: dict | None = None) -> TrainConfig:
    """Read a YAML config (relative paths against its folder) and check it."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as e:
        raise TrainConfigError(f"{path}: could not be read ({e})") from None
    except yaml.YAMLError as e:
        raise TrainConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(raw, dict):
        raise TrainConfigError(f"{path}: expected a mapping of settings at the top level")
    raw.update(overrides or {})
    config = from_dict(TrainConfig, raw, "config", path.parent.resolve())
    config.check()
    return config
