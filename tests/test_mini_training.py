"""vidiff-mini's training path: footage split by clip, the TAESD single-file layout, the degradations,
latents precomputed once and read back by the project's trainer. Small synthetic clips and random
weights; the real footage only where it is already fetched (the data command's cache)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from vidiff_model.errors import VIDiffError
from vidiff_model.mini import PACK_ROOT
from vidiff_model.mini.autoencoder import MiniVAE, export, from_taesd_state, new_autoencoder, to_taesd_state
from vidiff_model.mini.data import load_clips, prepare, split_by_clip
from vidiff_model.mini.latents import chunk_starts, precompute
from vidiff_model.mini.tasks import CHUNK, RESTORATION_TASKS, degrade_frames, make_pair
from vidiff_model.training.config import load_config
from vidiff_model.training.demo import make_encoders
from vidiff_model.training.triplets import TripletStream, collate


def write_clips(folder: Path, names: list[str], frames: int = 34, size: int = 40) -> None:
    """Animated WebP clips of a moving coloured gradient (plus one still image, which must be left out)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size + 8]
    for k, name in enumerate(names):
        images = [Image.fromarray(np.stack([(xx * 4 + f * 3 + k * 20) % 256, (yy * 5 + k * 40) % 256,
                                            (xx + yy + f) % 256], -1).astype(np.uint8)) for f in range(frames)]
        images[0].save(folder / f"{name}.webp", save_all=True, append_images=images[1:], lossless=True)
    Image.fromarray(np.zeros((size, size, 3), np.uint8)).save(folder / "still.webp")


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mini")
    write_clips(root / "footage", [f"clip{i:02d}" for i in range(20)])
    prepare(root / "data", size=32, footage=root / "footage")
    return root


# -- the split ------------------------------------------------------------------------------------------
def test_split_is_by_clip_fixed_and_disjoint():
    names = [f"clip{i:02d}" for i in range(78)]
    split = split_by_clip(names)
    assert set(split["train"]).isdisjoint(split["val"])
    assert sorted(split["train"] + split["val"]) == names
    assert len(split["val"]) == 8  # round(0.1 * 78)
    assert split_by_clip(list(reversed(names))) == split  # the order files are found in does not matter
    assert split_by_clip(names + ["clip99"])["val"] != []


def test_prepared_data_never_puts_a_validation_clip_in_training(footage):
    record = json.loads((footage / "data" / "split.json").read_text())
    train, val = load_clips(footage / "data" / "train"), load_clips(footage / "data" / "val")
    assert set(train) == set(record["split"]["train"]) and set(val) == set(record["split"]["val"])
    assert set(train).isdisjoint(val) and len(train) + len(val) == 20  # the still image is left out
    assert next(iter(train.values())).shape == (34, 32, 32, 3)
    # no validation frame appears among the training frames (content, not just names)
    train_frames = {f.tobytes() for clip in train.values() for f in clip}
    assert not any(f.tobytes() in train_frames for clip in val.values() for f in clip)


def test_real_footage_split_when_fetched():
    """The shipped split: the real package's 78 clips (skipped unless the data command fetched them)."""
    split_file = PACK_ROOT / "data" / "mini" / "split.json"
    if not split_file.exists():
        pytest.skip("data/mini not prepared here (python -m vidiff_model.mini.data data/mini)")
    record = json.loads(split_file.read_text())
    names = record["split"]["train"] + record["split"]["val"]
    assert len(names) == 78 and split_by_clip(names) == record["split"]
    assert "video_capybara_v0_1_video_edit-1" in record["split"]["val"]  # the shipped sample clip


# -- the autoencoder file ------------------------------------------------------------------------------
def test_taesd_layout_round_trip_and_host_semantics(tmp_path):
    torch.manual_seed(0)
    ae = new_autoencoder()
    state = to_taesd_state(ae, 0.9, -0.3)
    assert "taesd_decoder.1.weight" in state and state["taesd_decoder.1.weight"].shape == (64, 4, 3, 3)
    assert "taesd_encoder.0.weight" in state and state["taesd_encoder.14.weight"].shape == (4, 64, 3, 3)
    back, scale, shift = from_taesd_state(state)
    assert (scale, shift) == (pytest.approx(0.9), pytest.approx(-0.3))
    for k, v in ae.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    # the library's encode/decode are the host's: raw = enc(x01)/scale + shift; decode((raw - shift) * scale)
    from safetensors.torch import save_file

    save_file(state, str(tmp_path / "vae.safetensors"))
    vae = MiniVAE(tmp_path / "vae.safetensors")
    x = torch.rand(2, 16, 16, 3)
    raw = vae.encode(x)
    assert raw.shape == (4, 2, 2, 2)
    expected = ae.encode(x.permute(0, 3, 1, 2) * 2 - 1).latents / 0.9 - 0.3  # diffusers' own API, [-1, 1] input
    assert torch.allclose(raw.permute(1, 0, 2, 3), expected, atol=1e-5)
    decoded = ae.decode((raw.permute(1, 0, 2, 3) + 0.3) * 0.9).sample  # [-1, 1]
    assert torch.allclose(vae.decode(raw), ((decoded + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1), atol=1e-5)


def test_export_sets_unit_variance_latents(footage, tmp_path):
    torch.manual_seed(0)
    path = export(new_autoencoder(), footage / "data", tmp_path / "vae.safetensors")
    vae = MiniVAE(path)
    clip = next(iter(load_clips(footage / "data" / "train").values()))
    raw = vae.encode(torch.from_numpy(np.ascontiguousarray(clip[:8])).float() / 255)
    scaled = raw * 0.18215  # what the UNet's noisy branch sees
    assert abs(float(scaled.mean())) < 0.5 and 0.5 < float(scaled.std()) < 2.0
    meta = json.loads((tmp_path / "vae_report.json").read_text())
    assert meta["val_psnr_db"] > 0



def test_decoder_alone_keeps_the_encoder_and_its_scaling(footage, tmp_path):
    """Stage B trains the decoder of an exported file: the latents made with that file must stay valid."""
    from vidiff_model.mini.autoencoder import train

    torch.manual_seed(0)
    first = export(new_autoencoder(), footage / "data", tmp_path / "vae.safetensors")
    second = train(footage / "data", tmp_path / "b", steps=3, batch=2, crop=16, decoder_of=first)
    a, b = load_file(str(first)), load_file(str(second))
    assert a.keys() == b.keys()
    for k in a:
        if k.startswith("taesd_encoder") or k in ("vae_scale", "vae_shift"):
            assert torch.equal(a[k], b[k]), k
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("taesd_decoder"))

# -- degradations ---------------------------------------------------------------------------------------
def test_degradations_are_seeded_and_hurt_psnr():
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 48), indexing="ij")
    frames = torch.stack([torch.stack([xx, yy, (xx * yy + f / 8) % 1], -1) for f in range(8)])  # (8, 48, 48, 3)
    for task in RESTORATION_TASKS:
        a, target, _ = make_pair(task, frames, 7)
        b, _, _ = make_pair(task, frames, 7)
        assert torch.equal(a, b) and torch.equal(target, frames), task
        assert float(((a - frames) ** 2).mean()) > 1e-4, f"{task} changed nothing"
    holes, mask = degrade_frames(frames, "inpaint", 3)
    assert mask.shape == (8, 48, 48) and 0 < float(mask.mean()) < 0.5
    assert torch.all(holes[mask.bool()] == 0)  # black holes
    assert not torch.equal(mask[0], mask[-1]) or float(mask.sum()) == 0  # holes drift (speed may round to 0)
    with pytest.raises(VIDiffError, match="task"):
        degrade_frames(frames, "segmentation", 0)
    with pytest.raises(VIDiffError, match="images"):
        degrade_frames(frames[..., :2], "dehaze", 0)


# -- latents and the trainer ----------------------------------------------------------------------------
def test_chunk_starts():
    assert chunk_starts(15, 2) == []
    assert chunk_starts(16, 2) == [0]
    assert chunk_starts(45, 2) == [0, 29]
    assert all(b - a >= CHUNK for a, b in zip(chunk_starts(90, 3), chunk_starts(90, 3)[1:]))


@pytest.fixture(scope="module")
def latents(footage, tmp_path_factory) -> Path:
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("latents")
    vae = export(new_autoencoder(), footage / "data", root / "vae.safetensors")
    precompute(footage / "data", vae, root / "latents", chunks=2, tasks=RESTORATION_TASKS + ("style:sepia",))
    make_encoders(root / "encoders")
    return root


def test_precomputed_latents_hold_every_task(latents, footage):
    files = sorted((latents / "latents").glob("*.safetensors"))
    assert len(files) == len(load_clips(footage / "data" / "train"))
    state = load_file(str(files[0]))
    assert "clean" in state and all(t in state for t in RESTORATION_TASKS)
    assert state["clean"].shape == (2 * CHUNK, 4, 4, 4) and state["clean"].dtype == torch.float16
    assert not torch.equal(state["clean"], state["dehaze"])


def mini_yaml(latents: Path, out: Path, **data) -> Path:
    raw = {"output_dir": str(out), "model": {"random": "tiny", "image_instruction": False},
           "encoders": {"text_encoder": str(latents / "encoders" / "text_encoder")},
           "data": {"frames": 8, "height": 32, "width": 32, "image_instruction": 0.0,
                    "sources": [{"type": "latents", "path": str(latents / "latents"),
                                 "tasks": list(RESTORATION_TASKS)}], **data},
           "max_steps": 3, "save_every": 3, "validation": {"samples": 0}, "export_dtype": "fp32", "cpu": True}
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_latent_examples_dropout_and_first_frames(latents, tmp_path):
    cfg = load_config(mini_yaml(latents, tmp_path / "run", first_frames=1.0, drop_text=0, drop_video=0, drop_both=0))
    stream = TripletStream(cfg.data, cfg.stage, cfg.seed)
    e = stream[0]
    assert e.latent and e.source.shape == (8, 4, 4, 4) and e.target.shape == (8, 4, 4, 4)
    n = int(e.text.split("first ")[1].split(" frame")[0])  # "Based on the first n frames, ..."
    assert torch.equal(e.source[:n], e.target[:n]) and not torch.equal(e.source[n:], e.target[n:])
    cfg = load_config(mini_yaml(latents, tmp_path / "run2", drop_video=1.0, drop_text=0, drop_both=0))
    e = TripletStream(cfg.data, cfg.stage, cfg.seed)[3]
    assert not e.has_source and float(e.source.abs().sum()) == 0  # the null video is the zero latent
    batch = collate([e, e])
    assert batch["latent"] and batch["source"].shape == (2, 8, 4, 4, 4)


def test_trainer_runs_on_latents_without_a_vae(latents, tmp_path):
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "vidiff_model.train", "--config", str(mini_yaml(latents, out))],
                       cwd=PACK_ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    losses = [float(row.split(",")[1]) for row in (out / "log.csv").read_text().splitlines()[1:]]
    assert len(losses) == 3 and all(np.isfinite(losses))
    from vidiff_model import load_vidiff

    model = load_vidiff(out / "vidiff.safetensors")
    assert model.config.unet.temporal_norm == "per_frame"  # new training uses the original semantics


def test_min_snr_weighting_caps_low_noise_steps(latents, tmp_path):
    """min(SNR, γ)/SNR: 1 where SNR ≤ γ (high noise), γ/SNR below; the loss is the weighted per-sample MSE."""
    from vidiff_model.training.trainer import Trainer

    cfg = load_config(mini_yaml(latents, tmp_path / "run"))
    cfg.min_snr_gamma = 5.0
    trainer = Trainer(cfg)
    batch = collate([TripletStream(cfg.data, cfg.stage, cfg.seed)[i] for i in range(4)])
    torch.manual_seed(0)
    weighted = float(trainer.loss(batch))
    cfg.min_snr_gamma = 0.0
    plain = float(trainer.loss(batch))
    from vidiff_model.training.trainer import _sample_noise

    t = torch.tensor([_sample_noise(cfg.seed, int(i), (1,))[1] for i in batch["index"]])
    snr = trainer.alphas[t] / (1 - trainer.alphas[t])
    w = snr.clamp(max=5.0) / snr
    assert plain > 0 and weighted < plain + 1e-6  # every weight is ≤ 1
    if bool((w < 1).any()):  # some sample at a low noise level (SNR > γ) counts less
        assert weighted < plain
    cfg.min_snr_gamma = -1
    with pytest.raises(Exception, match="min_snr_gamma"):
        cfg.check()


def test_latents_source_errors_name_the_folder(tmp_path, latents):
    from vidiff_model.training.errors import DataError, TrainConfigError

    (tmp_path / "empty").mkdir()
    bad = mini_yaml(latents, tmp_path / "run")
    raw = yaml.safe_load(bad.read_text())
    raw["data"]["sources"][0]["path"] = str(tmp_path / "empty")
    bad.write_text(yaml.safe_dump(raw))
    cfg = load_config(bad)
    with pytest.raises(DataError, match="empty"):
        TripletStream(cfg.data, cfg.stage, cfg.seed)
    raw["data"]["sources"][0] = {"type": "latents", "path": str(latents / "latents"), "tasks": ["style:nope"]}
    bad.write_text(yaml.safe_dump(raw))
    cfg = load_config(bad)
    with pytest.raises(DataError, match="style:nope"):
        TripletStream(cfg.data, cfg.stage, cfg.seed)
    raw["data"]["sources"][0]["tasks"] = None
    raw["validation"] = {"samples": 1}
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(TrainConfigError, match="encoders.vae"):
        load_config(bad)


def test_mini_config_is_one_v_prediction_stage_on_the_recipes_latents():
    cfg = load_config(PACK_ROOT / "configs" / "train" / "mini.yaml")
    assert cfg.model.random == "mini" and cfg.model.prediction_type == "v_prediction"
    script = (PACK_ROOT / "scripts" / "train_mini.sh").read_text()
    assert "--chunks 2" in script and "configs/train/mini.yaml" in script
    assert Path(cfg.data.sources[0].path).resolve() == (PACK_ROOT / "data" / "mini" / "latents").resolve()
    assert f"cp {Path(cfg.output_dir).relative_to(PACK_ROOT)}/vidiff.safetensors models/vidiff/" in script
    # The measured second stage (not in the recipe) starts from the first one's file, on the same data.
    refine = load_config(PACK_ROOT / "configs" / "train" / "mini_refine.yaml")
    assert Path(refine.model.vidiff).resolve() == (Path(cfg.output_dir) / "vidiff.safetensors").resolve()
    assert not refine.model.image_instruction and refine.data.image_instruction == 0
    assert refine.data.sources == cfg.data.sources and refine.data.task_weights == cfg.data.task_weights
    assert refine.seed != cfg.seed and refine.lr_schedule == "cosine"
    assert "mini_refine" not in script  # measured and left out (its config's header says why)
    # The measured continuation stage, likewise: stage one's file and data, far more "first n frames" samples.
    cont = load_config(PACK_ROOT / "configs" / "train" / "mini_continue.yaml")
    assert Path(cont.model.vidiff).resolve() == (Path(cfg.output_dir) / "vidiff.safetensors").resolve()
    assert cont.data.sources == cfg.data.sources and cont.data.task_weights == cfg.data.task_weights
    assert cont.data.first_frames > cfg.data.first_frames and cont.seed not in (cfg.seed, refine.seed)
    assert "mini_continue" not in script
    # The shipped autoencoder: the decoder stage's file, whose frozen encoder is the one the latents came from.
    made_latents = script.split("-m vidiff_model.mini.latents", 1)[1].split("--vae ", 1)[1].split()[0]
    assert f"--decoder-of {made_latents}" in script
    assert "cp runs/mini_vae_decoder/vidiff_mini_vae.safetensors models/vae/" in script


def test_cosine_learning_rate_warms_up_then_decays_to_its_floor(latents, tmp_path):
    from vidiff_model.training.trainer import learning_rate_at

    cfg = load_config(mini_yaml(latents, tmp_path / "run"))
    cfg.learning_rate, cfg.warmup_steps, cfg.max_steps = 2e-4, 10, 111  # decays over steps 10..110
    assert [learning_rate_at(cfg, s) for s in (0, 9, 50, 110)] == pytest.approx([2e-5, 2e-4, 2e-4, 2e-4])
    cfg.lr_schedule, cfg.min_learning_rate = "cosine", 1e-5
    rates = [learning_rate_at(cfg, s) for s in range(cfg.max_steps)]
    assert rates[0] == pytest.approx(2e-5) and rates[10] == pytest.approx(2e-4)
    assert rates[60] == pytest.approx((2e-4 + 1e-5) / 2) and rates[-1] == pytest.approx(1e-5)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))  # never rises after the warm-up
    assert learning_rate_at(cfg, 500) == pytest.approx(1e-5)  # past max_steps (a longer resume): the floor
    cfg.lr_schedule = "linear"
    with pytest.raises(Exception, match="lr_schedule"):
        cfg.check()
    cfg.lr_schedule, cfg.min_learning_rate = "cosine", 1.0
    with pytest.raises(Exception, match="min_learning_rate"):
        cfg.check()


def test_autoencoder_loss_charges_a_lost_colour_more_than_the_pixel_losses_do():
    """The block-mean term in opponent colours: a gray copy of a coloured frame (same luma) costs far more
    with it than without, and a perfect reconstruction costs nothing but the latent pull."""
    from vidiff_model.mini.autoencoder import opponent, reconstruction_loss

    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=g) * 0.5 + torch.tensor([0.4, 0.1, 0.0]).view(1, 3, 1, 1)
    gray = opponent(x)[:, :1].expand(-1, 3, -1, -1)  # the luma of x in every channel
    z = torch.zeros(2, 4, 4, 4)
    plain = reconstruction_loss(gray, x, z, block_weight=0.0)
    weighted = reconstruction_loss(gray, x, z, block_weight=4.0)
    assert weighted > 3 * plain, (float(weighted), float(plain))
    assert float(reconstruction_loss(x, x, z)) == 0.0
    assert torch.allclose(opponent(gray)[:, 1:], torch.zeros(1), atol=1e-6)  # gray has no chroma


def test_v_prediction_loss_is_the_v_error(latents, tmp_path):
    """A v-prediction model's training loss is |v̂ − v|², computed here from the UNet's raw output."""
    from dataclasses import replace

    from vidiff_model.training.trainer import Trainer, _sample_noise

    cfg = load_config(mini_yaml(latents, tmp_path / "run"))
    cfg.model.prediction_type = "v_prediction"
    trainer = Trainer(cfg)
    model = trainer.model
    assert model.config.prediction_type == "v_prediction"
    example = TripletStream(cfg.data, cfg.stage, cfg.seed)[5]
    batch = collate([example])
    with torch.no_grad():
        loss = float(trainer.loss(batch))
        x0 = batch["target"].transpose(1, 2) * model.config.latent_scaling_factor
        noise, t = _sample_noise(cfg.seed, int(batch["index"][0]), tuple(x0.shape[1:]))
        a = trainer.alphas[t]
        noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise[None]
        text = trainer.encoders.encode_text(batch["text"])
        model.config = replace(model.config, prediction_type="epsilon")  # the UNet's raw output
        raw = model(noisy, batch["source"].transpose(1, 2), torch.tensor([t]), text)
        model.config = replace(model.config, prediction_type="v_prediction")
    v = a.sqrt() * noise[None] - (1 - a).sqrt() * x0
    assert loss == pytest.approx(float((raw - v).pow(2).mean()), rel=1e-3)
