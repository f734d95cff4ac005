"""Training: data for every task, condition dropout, bad data, stages, resume after a kill, two
processes over gloo, and the saved checkpoint sampling through the library. All on the CPU with the
demo setup (generated videos, random tiny encoders)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from vidiff_model import load_vidiff, translate_video
from vidiff_model.sampling import DiffusersSampler
from vidiff_model.training.config import TrainConfig, load_config
from vidiff_model.training.demo import TINY_CONFIG, make_dataset, make_encoders
from vidiff_model.training.errors import DataError, TrainConfigError
from vidiff_model.training.run_log import read_log
from vidiff_model.training.templates import TEMPLATES
from vidiff_model.training.triplets import TripletStream
from vidiff_model.video_ops import mask_from_marked

ROOT = Path(__file__).resolve().parents[1]
TASK_SOURCES = {  # task -> the dataset entry of the demo config that offers it
    "recolor": 0, "inpaint": 0, "dehaze": 1, "deblur": 2, "segmentation": 3, "editing": 4,
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    make_dataset(root / "data")
    make_encoders(root / "encoders")
    return root


def write_config(demo: Path, out: Path, **changes) -> Path:
    """The demo's tiny config with `changes` merged in (nested dicts merge), written next to the data."""
    raw = yaml.safe_load(TINY_CONFIG.format(steps=30))
    raw["output_dir"] = str(out)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key].update(value)
        else:
            raw[key] = value
    path = demo / f"config-{out.name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def train_here(config_path: Path) -> Path:
    """Train in this process (accelerate's process-wide state reset first)."""
    from accelerate.state import AcceleratorState, PartialState

    from vidiff_model.training.trainer import train

    AcceleratorState._reset_state(True)
    PartialState._reset_state()
    return train(load_config(config_path))


def train_cli(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidiff_model.train", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, **kw)


def stream(demo: Path, tmp_path: Path, stage: str = "v2v", **data) -> TripletStream:
    cfg = load_config(write_config(demo, tmp_path / "run", data=data, stage=stage))
    return TripletStream(cfg.data, cfg.stage, cfg.seed)


# -- configs --------------------------------------------------------------------------------------

def test_config_errors_name_the_key(demo, tmp_path):
    cfg = load_config(write_config(demo, tmp_path / "run"))
    assert isinstance(cfg, TrainConfig) and Path(cfg.encoders.vae) == demo / "encoders" / "vae"  # relative to the YAML
    for changes, words in (({"learning_rat": 1e-4}, "unknown key learning_rat"),
                           ({"data": {"frames": "many"}}, "data.frames: expected int"),
                           ({"model": {"random": "tiny", "vidiff": "x.safetensors"}}, "exactly one start"),
                           ({"stage": "t2i"}, "stage: 't2i'"),
                           ({"data": {"height": 36}}, "multiples of 8"),
                           ({"data": {"task_weights": {"dehaze": 1, "colorize": 1}}}, "unknown task 'colorize'")):
        with pytest.raises(TrainConfigError, match=words):
            load_config(write_config(demo, tmp_path / "bad", **changes))
    out = train_cli("--config", str(write_config(demo, tmp_path / "bad", mixed_precision="fp8")))
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1].startswith("error: mixed_precision: 'fp8'")


# -- data -----------------------------------------------------------------------------------------

def _example_of(s: TripletStream, task: str):
    return next(t for t in (s.triplet(i) for i in range(200)) if t.task == task)


def test_every_task_makes_its_triplet(demo, tmp_path):
    s = stream(demo, tmp_path, frames=4)
    assert sorted(s.tasks) == ["deblur", "dehaze", "editing", "inpaint", "recolor", "segmentation"]
    t = _example_of(s, "recolor")
    assert t.source.shape == t.target.shape == (4, 32, 32, 3)
    assert torch.allclose(t.source[..., 0], t.source[..., 2]) and not torch.allclose(t.target[..., 0], t.target[..., 2])
    t = _example_of(s, "inpaint")
    holes = (t.source == 0).all(-1)
    assert 0 < float(holes.float().mean()) < 0.9 and bool((t.target[holes].sum(-1) > 0).all())
    assert torch.equal(t.source[~holes], t.target[~holes])
    t = _example_of(s, "dehaze")  # paired folders: hazy input is lower in contrast than its ground truth
    assert float(t.source.std()) < float(t.target.std())
    t = _example_of(s, "deblur")  # blur removes high frequencies
    hf = lambda v: float((v[:, :, 1:] - v[:, :, :-1]).abs().mean())
    assert hf(t.source) < hf(t.target)
    t = _example_of(s, "segmentation")
    assert ("red box" in t.instruction or "small square" in t.instruction)
    color = next(c for c in ("red", "green", "blue", "yellow") if c.capitalize() in t.instruction)
    mask = mask_from_marked(t.source, t.target, color)
    painted = (t.target - t.source).abs().sum(-1) > 1e-6
    assert 0 < float(mask.mean()) < 0.8 and float((mask.bool() == painted).float().mean()) > 0.97
    t = _example_of(s, "editing")
    assert t.instruction == "Invert the colors of the video"
    assert float((t.target - (1 - t.source)).abs().mean()) < 0.05  # the target is the inverted source
    # plain videos with synthetic haze and blur
    s = stream(demo, tmp_path, frames=4, sources=[{"type": "videos", "path": str(demo / "data" / "videos"),
                                                   "tasks": ["dehaze", "deblur"]}])
    t = _example_of(s, "dehaze")
    assert float(t.source.mean()) > float(t.target.mean()) and float(t.source.std()) < float(t.target.std())
    t = _example_of(s, "deblur")
    assert hf(t.source) < hf(t.target)
    # text-video pairs (stage 2) have no source
    s = stream(demo, tmp_path, "t2v", frames=4, sources=[{"type": "text_video", "jsonl": str(demo / "data" /
                                                                                          "captions" / "captions.jsonl")}])
    t = s.triplet(0)
    assert t.source is None and t.task == "t2v" and t.instruction.startswith("a disc moving")


def test_samples_are_a_function_of_seed_and_index(demo, tmp_path):
    a, b = stream(demo, tmp_path, frames=4), stream(demo, tmp_path, frames=4)
    for i in (0, 7, 123):
        ea, eb = a[i], b[i]
        assert ea.text == eb.text and torch.equal(ea.source, eb.source) and torch.equal(ea.target, eb.target)
    assert any(a[i].text != a[i + 1].text or not torch.equal(a[i].target, a[i + 1].target) for i in range(5))


def test_dropout_image_and_first_frames_rates(demo, tmp_path):
    p = dict(drop_text=0.2, drop_video=0.15, drop_both=0.1, image_instruction=0.3, image_only=0.5, first_frames=0.3)
    s = stream(demo, tmp_path, frames=4, **p, sources=[{"type": "videos", "path": str(demo / "data" / "videos"),
                                                         "tasks": ["recolor"]}])
    n = 600
    examples = [s[i] for i in range(n)]
    no_text = sum(e.text == "" and not e.has_image for e in examples) / n
    no_video = sum(not e.has_source for e in examples) / n
    both = sum(e.text == "" and not e.has_image and not e.has_source for e in examples) / n
    tol = 3 * (0.25 / n) ** 0.5  # three standard deviations of a rate near 1/2
    # text-only drops can also come from image-only instructions with the image dropped: only
    # "no text and no image" counts, which image-only samples (they keep the image) never are
    assert abs(no_text - (p["drop_text"] + p["drop_both"])) < tol
    assert abs(no_video - (p["drop_video"] + p["drop_both"])) < tol
    assert abs(both - p["drop_both"]) < tol
    images = [e for e in examples if e.has_image]
    keep_text = 1 - p["drop_text"] - p["drop_both"]
    assert abs(len(images) / n - p["image_instruction"] * keep_text) < tol
    assert all(e.image.abs().sum() > 0 for e in images) and all(e.image.abs().sum() == 0 for e in examples
                                                                if not e.has_image)
    firsts = [e for e in examples if e.text.startswith("Based on the first")]
    assert abs(len(firsts) / n - p["first_frames"] * (1 - p["drop_text"] - p["drop_both"]) *
               (1 - p["image_instruction"] * p["image_only"])) < tol
    for e in firsts:
        k = int(e.text.split()[4])
        rest = e.text.removeprefix(f"Based on the first {k} frames, ")
        assert 1 <= k <= 2 and rest[:1].upper() + rest[1:] in TEMPLATES["recolor"]
        if e.has_source:
            assert torch.equal(e.source[:k], e.target[:k]) and not torch.equal(e.source[k], e.target[k])


def _bad_data(demo: Path, tmp_path: Path) -> list[dict]:
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "good.mp4").write_bytes((demo / "data" / "videos" / "clip0.mp4").read_bytes())
    (videos / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    refer = tmp_path / "refer"
    import shutil

    shutil.copytree(demo / "data" / "refer", refer)
    short = sorted((refer / "Annotations" / "v1").iterdir())
    for p in short[6:]:
        p.unlink()
    return [{"type": "videos", "path": str(videos), "tasks": ["recolor"]},
            {"type": "segmentation", "root": str(refer), "images": "JPEGImages/{clip}", "masks": "Annotations/{clip}",
             "names": "meta_expressions.json"}]


def test_bad_data_stops_or_is_skipped_by_setting(demo, tmp_path, capfd):
    sources = _bad_data(demo, tmp_path)
    with pytest.raises(DataError, match=r"broken\.mp4: could not be decoded.*on_bad_data: skip"):
        stream(demo, tmp_path, frames=4, sources=sources)
    with pytest.raises(DataError, match=r"Annotations/v1: has 6 masks for 10 frames"):
        stream(demo, tmp_path, frames=4, sources=sources[1:])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"empty: holds no videos"):
        stream(demo, tmp_path, frames=4, sources=[{"type": "videos", "path": str(empty)}])
    capfd.readouterr()
    s = stream(demo, tmp_path, frames=4, sources=sources, on_bad_data="skip")
    err = capfd.readouterr().err
    assert "skipping" in err and "broken.mp4" in err and "Annotations/v1" in err
    assert s.skipped == 2
    assert {str(s.sources[0].items[0][0].name)} == {"good.mp4"} and all(i[0].name == "v0" for i in s.sources[1].items)
    assert all(s[i].target.shape == (4, 32, 32, 3) for i in range(10))
    # a file that breaks after start-up (replaced while training) is skipped at read time, and named
    (tmp_path / "videos" / "good.mp4").write_bytes(b"garbage")
    assert all(s[i].task == "segmentation" for i in range(10))
    assert "good.mp4" in capfd.readouterr().err


# -- training -------------------------------------------------------------------------------------

@pytest.mark.parametrize("task", sorted(TASK_SOURCES))
def test_tiny_training_lowers_the_loss_for_each_task(demo, tmp_path, task):
    out = tmp_path / task
    path = train_here(write_config(demo, out, max_steps=30, save_every=30, data={"task_weights": {task: 1.0}},
                                   validation={"samples": 0}))
    losses = [r["loss"] for r in read_log(out)]
    assert len(losses) == 30
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.6 * first, (task, first, last)
    assert load_vidiff(path).config.image_instruction is not None


def test_checkpoint_loads_and_samples_through_the_library(demo, tmp_path):
    out = tmp_path / "run"
    path = train_here(write_config(demo, out, max_steps=4, save_every=2, ema_decay=0.9, gradient_accumulation=2,
                                   validation={"every": 2, "samples": 1, "steps": 2}))
    model = load_vidiff(path)
    assert path.exists() and json.loads((out / "checkpoints" / "step-0000004" / "trainer_state.json").read_text())["step"] == 4
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-0000002", "step-0000004"]
    from vidiff_model.checkpoints.io import TensorFile

    meta = TensorFile(path).metadata
    assert meta["stage"] == "v2v" and meta["step"] == "4" and meta["ema"] == "True"
    text = torch.randn(1, 77, 32)
    result = translate_video(model, torch.randn(1, 4, 4, 16, 16), model.encode_instruction(text),
                             model.null_instruction(torch.zeros(1, 77, 32)), sampler=DiffusersSampler("euler", "normal", 2))
    assert result.latent.shape == (1, 4, 4, 16, 16) and torch.isfinite(result.latent).all()
    strips = sorted((out / "samples").glob("*.webp"))
    assert [p.name.split("-")[1] for p in strips] == ["0000002", "0000004"]
    from PIL import Image

    with Image.open(strips[0]) as im:
        assert im.size == (3 * 32, 32) and im.n_frames == 4  # source | result | target, 4 frames


def test_stage2_trains_only_temporal_layers_and_stage3_starts_from_it(demo, tmp_path):
    captions = str(demo / "data" / "captions" / "captions.jsonl")
    stage2 = train_here(write_config(demo, tmp_path / "t2v", stage="t2v", max_steps=3, save_every=3,
                                     validation={"samples": 1, "steps": 2},
                                     data={"sources": [{"type": "text_video", "jsonl": captions}]},
                                     model={"random": "tiny", "image_instruction": False}))
    torch.manual_seed(0)  # the trainer seeds the random start with the run's seed (0)
    from vidiff_model.config import tiny_config
    from vidiff_model.model import VIDiffModel

    start = VIDiffModel(tiny_config(image_instruction=False, cross_attention_dim=32)).state_dict()
    after = load_vidiff(stage2).state_dict()
    changed = {k for k in start if not torch.equal(start[k], after[k])}
    assert changed and all("motion_modules" in k for k in changed)
    stage3 = train_here(write_config(demo, tmp_path / "v2v", max_steps=2, save_every=2, validation={"samples": 0},
                                     model={"vidiff": str(stage2), "random": None}))
    model = load_vidiff(stage3)
    assert model.config.image_instruction is not None  # a fresh image MLP was added for stage 3
    assert not torch.equal(model.state_dict()["unet.conv_in.weight"], after["unet.conv_in.weight"])


def test_gradient_checkpointing_and_bf16_run(demo, tmp_path):
    base = train_here(write_config(demo, tmp_path / "plain", max_steps=2, save_every=2, validation={"samples": 0}))
    ckpt = train_here(write_config(demo, tmp_path / "ckpt", max_steps=2, save_every=2, validation={"samples": 0},
                                   gradient_checkpointing=True))
    plain, checkpointed = read_log(tmp_path / "plain"), read_log(tmp_path / "ckpt")
    assert [r["loss"] for r in plain] == pytest.approx([r["loss"] for r in checkpointed], rel=1e-5)
    a, b = load_vidiff(base).state_dict(), load_vidiff(ckpt).state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    train_here(write_config(demo, tmp_path / "bf16", max_steps=2, save_every=2, validation={"samples": 0},
                            mixed_precision="bf16"))
    bf16 = read_log(tmp_path / "bf16")
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in bf16)
    assert bf16[0]["loss"] == pytest.approx(plain[0]["loss"], rel=0.05)  # same sample, lower precision


def test_latent_cache_gives_the_same_latents(demo, tmp_path):
    from vidiff_model.training.config import EncodersConfig
    from vidiff_model.training.encoders import FrozenEncoders

    enc = lambda cache: FrozenEncoders(EncodersConfig(text_encoder=str(demo / "encoders" / "text_encoder"),
                                                      vae=str(demo / "encoders" / "vae"), latent_cache=cache),
                                       torch.device("cpu"), need_image=False)
    frames = torch.rand(2, 4, 32, 32, 3)
    plain, cached = enc(None), enc(str(tmp_path / "cache"))
    want = plain.encode_video(frames)
    assert torch.equal(cached.encode_video(frames), want) and len(list((tmp_path / "cache").iterdir())) == 2
    assert torch.equal(cached.encode_video(frames), want) and len(list((tmp_path / "cache").iterdir())) == 2
    assert want.shape == (2, 4, 4, 16, 16)


def test_resume_after_kill_continues_exactly(demo, tmp_path):
    """Kill -9 a run after its first checkpoint; the rerun continues from it and ends identical, loss for
    loss and weight for weight, to a run never interrupted."""
    settings = dict(max_steps=12, save_every=3, ema_decay=0.9, gradient_accumulation=2, validation={"samples": 0},
                    data={"num_workers": 1})
    straight = train_cli("--config", str(write_config(demo, tmp_path / "straight", **settings)))
    assert straight.returncode == 0, straight.stderr[-3000:]
    config = write_config(demo, tmp_path / "killed", **settings)
    proc = subprocess.Popen([sys.executable, "-m", "vidiff_model.train", "--config", str(config)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    ckpts = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and not list(ckpts.glob("step-*/trainer_state.json")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(p.parent.name for p in ckpts.glob("step-*/trainer_state.json"))
    assert done and "step-0000012" not in done, f"the kill came too late to test anything: {done}"
    rerun = train_cli("--config", str(config))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resumed from" in rerun.stderr
    a, b = read_log(tmp_path / "straight"), read_log(tmp_path / "killed")
    assert [r["step"] for r in b] == list(range(1, 13))
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    wa = load_vidiff(tmp_path / "straight" / "vidiff.safetensors").state_dict()
    wb = load_vidiff(tmp_path / "killed" / "vidiff.safetensors").state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # a changed batch size would change the data order: refused, named
    out = train_cli("--config", str(config), "--max-steps", "14", env={})
    assert out.returncode == 0
    changed = write_config(demo, tmp_path / "killed", **{**settings, "batch_size": 2})
    out = train_cli("--config", str(changed), "--max-steps", "16")
    assert out.returncode == 2 and "batch_size 1 → 2" in out.stderr


def test_two_processes_over_gloo_match_one_process(demo, tmp_path):
    """torchrun, 2 CPU processes × batch 1 read the same samples as 1 process × batch 2; with gradients
    averaged over the processes, both runs end with the same weights."""
    one = train_cli("--config", str(write_config(demo, tmp_path / "one", max_steps=4, save_every=4, batch_size=2,
                                                 validation={"samples": 0})))
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          str(29500 + os.getpid() % 500), "-m", "vidiff_model.train", "--config",
                          str(write_config(demo, tmp_path / "two", max_steps=4, save_every=4, batch_size=1,
                                           validation={"samples": 0}))],
                         cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert two.returncode == 0, two.stderr[-3000:]
    state = json.loads((tmp_path / "two" / "checkpoints" / "step-0000004" / "trainer_state.json").read_text())
    assert state["world_size"] == 2
    la, lb = read_log(tmp_path / "one"), read_log(tmp_path / "two")
    assert [r["loss"] for r in la] == pytest.approx([r["loss"] for r in lb], rel=1e-4)
    wa = load_vidiff(tmp_path / "one" / "vidiff.safetensors").state_dict()
    wb = load_vidiff(tmp_path / "two" / "vidiff.safetensors").state_dict()
    # Adam divides by √v, so float summation-order noise in near-zero gradients shows up at ~lr in a few
    # weights; measured against how far training moved the weights, the runs agree to 1e-3 (measured 9e-5).
    from vidiff_model.config import tiny_config
    from vidiff_model.model import VIDiffModel
    from vidiff_model.training.setup_model import _image_config

    torch.manual_seed(0)  # the trainer's random start for seed 0
    start = VIDiffModel(tiny_config(image_instruction=False, cross_attention_dim=32).with_image_instruction(
        _image_config(32, 32, "tiny"))).state_dict()
    moved = sum(float((wa[k] - start[k]).abs().sum()) for k in wa)
    apart = sum(float((wa[k] - wb[k]).abs().sum()) for k in wa)
    assert moved > 100 and apart < 1e-3 * moved, (apart, moved)


@pytest.mark.parametrize("name", ["stage2_t2v", "stage3_v2v", "tiny_cpu"])
def test_shipped_configs_are_valid(name):
    cfg = load_config(ROOT / "configs" / "train" / f"{name}.yaml")
    assert cfg.stage == ("t2v" if name.startswith("stage2") else "v2v")
    if name != "tiny_cpu":  # the paper's setting
        assert (cfg.data.frames, cfg.data.height, cfg.data.width, cfg.learning_rate) == (16, 256, 256, 1e-4)


def test_single_file_vae_and_text_encoder_as_comfyui_keeps_them(tmp_path):
    """The VAE and CLIP-L files ComfyUI users have (models/vae, models/text_encoders) work as training
    encoders; the VAE matches diffusers' own single-file loader."""
    import fixture_files as ff
    from comfy_harness import comfyui_path
    from diffusers import AutoencoderKL

    from vidiff_model.training.encoders import SD15_VAE, load_text_model, load_vae

    ff.save_tensors(tmp_path / "vae.safetensors", ff.random_tensors(ff.sd_vae_shapes(), seed=2))
    ff.save_tensors(tmp_path / "ip2p.safetensors", {"first_stage_model." + k: v for k, v in
                                                    ff.random_tensors(ff.sd_vae_shapes(), seed=2).items()})
    (tmp_path / "cfg").mkdir()
    AutoencoderKL(**SD15_VAE).save_config(tmp_path / "cfg")
    want = AutoencoderKL.from_single_file(str(tmp_path / "vae.safetensors"), config=str(tmp_path / "cfg"),
                                          local_files_only=True).float()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    expected = want.encode(x).latent_dist.mode()
    for name in ("vae.safetensors", "ip2p.safetensors"):
        got = load_vae(str(tmp_path / name)).encode(x).latent_dist.mode()
        torch.testing.assert_close(got, expected)
    with pytest.raises(TrainConfigError, match="holds no SD VAE"):
        load_vae(_write_other(tmp_path))

    weights = ff.random_tensors({("text_model." + k if not k.startswith("text_model.") else k): s
                                 for k, s in ff.clip_l_text_shapes().items()}, seed=1)
    ff.save_tensors(tmp_path / "clip_l.safetensors", weights)
    tokenizer = comfyui_path() / "comfy" / "sd1_tokenizer"
    enc = load_text_model(str(tmp_path / "clip_l.safetensors"), str(tokenizer))
    torch.testing.assert_close(enc.text_model.final_layer_norm.weight, weights["text_model.final_layer_norm.weight"].float())
    hidden = enc.encode(["Remove the applied haze from this video", ""])
    assert hidden.shape == (2, 77, 768) and not torch.allclose(hidden[0], hidden[1])
    with pytest.raises(TrainConfigError, match="needs a CLIP tokenizer folder"):
        load_text_model(str(tmp_path / "clip_l.safetensors"), None)


def _write_other(tmp_path: Path) -> str:
    from safetensors.torch import save_file

    save_file({"lora_unet_down.weight": torch.zeros(2, 2)}, str(tmp_path / "lora.safetensors"))
    return str(tmp_path / "lora.safetensors")


def test_bad_data_found_while_training_stops_the_run_with_its_path(demo, tmp_path):
    """An instruction over 77 CLIP tokens is found when its sample is read, in a loader worker: the run
    stops with one line naming the file, or, with skip, finishes and counts it."""
    edits = tmp_path / "edits"
    edits.mkdir()
    for name in ("src0.mp4", "tgt0.mp4"):
        (edits / name).write_bytes((demo / "data" / "edits" / name).read_bytes())
    long_text = " ".join(["make the sky a slightly warmer orange"] * 12)
    (edits / "edits.jsonl").write_text(json.dumps({"source": "src0.mp4", "target": "tgt0.mp4",
                                                   "instruction": long_text}) + "\n")
    sources = [{"type": "videos", "path": str(demo / "data" / "videos"), "tasks": ["recolor"]},
               {"type": "editing", "jsonl": str(edits / "edits.jsonl")}]
    settings = dict(max_steps=6, save_every=6, validation={"samples": 0})
    out = train_cli("--config", str(write_config(demo, tmp_path / "stop", **settings,
                                                 data={"sources": sources, "num_workers": 1})))
    assert out.returncode == 2, out.stderr[-2000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "src0.mp4: its instruction takes" in last and "on_bad_data: skip" in last
    out = train_cli("--config", str(write_config(demo, tmp_path / "skip", **settings,
                                                 data={"sources": sources, "num_workers": 1, "on_bad_data": "skip"})))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "skipping" in out.stderr and "src0.mp4" in out.stderr
    assert read_log(tmp_path / "skip")[-1]["step"] == 6


def test_frame_index_skips_probing_on_restart(demo, tmp_path, monkeypatch):
    import shutil

    import numpy as np

    import vidiff_model.training.frames as frames
    from vidiff_model.training.demo import write_mp4

    videos = tmp_path / "videos"
    shutil.copytree(demo / "data" / "videos", videos)
    cfg = load_config(write_config(demo, tmp_path / "run", data={"sources": [{"type": "videos", "path": str(videos)}]}))
    index = tmp_path / "run" / "data_index.json"
    first = TripletStream(cfg.data, cfg.stage, 0, index_file=index)
    assert len(json.loads(index.read_text())) == 4
    calls = []
    real = frames._count_frames
    monkeypatch.setattr(frames, "_count_frames", lambda p: calls.append(p.name) or real(p))
    again = TripletStream(cfg.data, cfg.stage, 0, index_file=index)
    assert calls == [] and again.sources[0].items == first.sources[0].items
    write_mp4(videos / "clip1.mp4", np.zeros((6, 40, 48, 3), np.uint8))  # replaced: probed again, 6 frames now
    changed = TripletStream(cfg.data, cfg.stage, 0, index_file=index)
    assert calls == ["clip1.mp4"] and dict((p.name, n) for p, n in changed.sources[0].items)["clip1.mp4"] == 6
