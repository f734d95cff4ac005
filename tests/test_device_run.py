"""The prepared GPU run (issue 25) end to end at micro scale on the CPU: `scripts/device_pack.sh` packs a small
generated data set (training clips only), `scripts/device_run.sh --micro` runs every stage for a few steps with
the carried diffusers wheel unpacked and used, a second call resumes, and what comes back is checked: at most
8 files under 16 MiB, the report's fields, weights the project's loaders read. 2.5–4 min on the shared 2-core
machine (marked slow; CI runs it). The pack's wheels come from PyPI once (cached in .cache/device_wheels)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from comfy_harness import comfyui_path
from vidiff_model.mini import PACK_ROOT
from vidiff_model.mini.data import load_clips, prepare
from vidiff_model.device_run.pack import read_packed_clip
from vidiff_model.device_run.files import (BENCH_FILE, LOG_FILE, REPORT_FILE, UNET_LOG_FILE, VAE_FILE, join_parts,
                                            part_files)

pytestmark = pytest.mark.slow
BUDGET = 300  # an upper bound: --micro caps every stage's steps, so a call ends when its work is done
EXPECTED = {VAE_FILE, REPORT_FILE, LOG_FILE, BENCH_FILE, UNET_LOG_FILE, "vidiff_mini.part1of3.safetensors",
            "vidiff_mini.part2of3.safetensors", "vidiff_mini.part3of3.safetensors"}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OUT", "DEVICE_RUN_T0")}
    return {**env, "PYTHON": sys.executable, "VIDIFF_COMFYUI": str(comfyui_path()), **extra}


def smooth_clips(folder: Path, n: int, frames: int = 34, size: int = 40) -> None:
    """Animated WebP clips of drifting waves, a different mix per clip (footage-like: smooth, so lossy WebP keeps
    it above 30 dB, where the sawtooth clips of test_mini_training lose a third of their chroma)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:size, 0:size + 8] / size
    for k in range(n):
        images = []
        for f in range(frames):
            t = f / frames
            rgb = [np.sin(2 * np.pi * (x * (1 + k % 3) + t + k / n)), np.sin(2 * np.pi * (y * (1 + k % 2) - t + k / 7)),
                   np.cos(2 * np.pi * ((x + y) / 2 + 0.5 * t + k / 5))]
            images.append(Image.fromarray((128 + 100 * np.stack(rgb, -1)).astype(np.uint8)))
        images[0].save(folder / f"clip{k:02d}.webp", save_all=True, append_images=images[1:], lossless=True)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """4 generated clips at 32² (split 3 / 1) and their pack."""
    root = tmp_path_factory.mktemp("device")
    smooth_clips(root / "footage", 4)
    prepare(root / "data", size=32, footage=root / "footage")
    r = subprocess.run(["bash", "scripts/device_pack.sh", "--quality", "90"], cwd=PACK_ROOT, capture_output=True,
                       text=True, timeout=300, env=_env(DATA=str(root / "data"), PACK=str(root / "pack")))
    assert r.returncode == 0, r.stderr[-3000:]
    (root / "pack_stdout.txt").write_text(r.stdout)
    return root


def _run(root: Path, out: str, budget: float, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    r = subprocess.run(["bash", "scripts/device_run.sh", str(budget), "--micro", *args], cwd=PACK_ROOT,
                       capture_output=True, text=True, timeout=BUDGET + 120,
                       env=_env(OUT=str(root / out), DEVICE_PACK=str(root / "pack"), DEVICE_WORK=str(root / "work"),
                                DEVICE_WHEELS_FORCE="diffusers"))
    return r, time.monotonic() - start


@pytest.fixture(scope="module")
def runs(root) -> Path:
    """Two calls on the same work folder, returning into out1 and out2. The second has no UNet step cap and a
    5 s budget, so the clock ends its training: its UNet deadline (budget − 3 s reserve) has passed before the
    first step, which is therefore the last."""
    for out, budget, args in (("out1", BUDGET, ()), ("out2", 5, ("--unet-steps-per-call", "0"))):
        r, took = _run(root, out, budget, *args)
        (root / f"{out}.txt").write_text(f"{took:.1f} s\n{r.stdout}\n{r.stderr}")
        assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    return root


# -- the pack ---------------------------------------------------------------------------------------------
def test_pack_holds_the_training_clips_only(root):
    split = json.loads((root / "data" / "split.json").read_text())["split"]
    record = json.loads((root / "pack" / "pack.json").read_text())
    assert len(split["val"]) == 1 and len(split["train"]) == 3
    assert sorted(record["clips"]) == split["train"] and record["validation_left_out"] == split["val"]
    packed = sorted(p.stem for p in (root / "pack" / "clips").iterdir())
    assert packed == split["train"]
    # content, not just names: no packed frame is close to a validation frame, each is close to its own
    val = next(iter(load_clips(root / "data" / "val").values())).astype(np.float32)
    train = load_clips(root / "data" / "train")
    for name in packed:
        clip = read_packed_clip(root / "pack" / "clips" / f"{name}.webp", train[name].shape[0], 32).astype(np.float32)
        assert clip.shape == train[name].shape
        assert np.abs(clip - train[name]).mean() < 8  # lossy WebP, a few levels off
        assert np.abs(clip[:, None] - val[None]).mean(axis=(2, 3, 4)).min() > 8
    wheels = {p.name.split("-")[0] for p in (root / "pack" / "wheels").glob("*.whl")}
    assert {"diffusers", "requests", "pytest"} <= wheels
    assert (root / "pack" / "tokenizer" / "vocab.json").is_file()


def test_pack_size_is_reported_and_limited(root):
    record = json.loads((root / "pack" / "pack.json").read_text())
    in_pack = sum(p.stat().st_size for p in (root / "pack").rglob("*") if p.is_file())
    assert record["total_mib"] * 2**20 == pytest.approx(record["working_tree_bytes"] + in_pack, abs=4096)
    assert record["total_mib"] < 64
    assert f"{record['total_mib']:.1f} of 64 MiB" in (root / "pack_stdout.txt").read_text()
    r = subprocess.run(["bash", "scripts/device_pack.sh", "--limit-mib", "20"], cwd=PACK_ROOT, capture_output=True,
                       text=True, timeout=300, env=_env(DATA=str(root / "data"), PACK=str(root / "too_big")))
    assert r.returncode != 0 and "over the device's 20 MiB" in r.stderr  # the working tree alone is ~40 MiB


def test_unpacking_refuses_a_pack_with_a_validation_clip(root, tmp_path):
    from vidiff_model.device_run.pack import PackError, unpack_clips

    bad = tmp_path / "pack"
    shutil.copytree(root / "pack", bad, ignore=shutil.ignore_patterns("wheels"))
    record = json.loads((bad / "pack.json").read_text())
    name = record["validation_left_out"][0]
    record["clips"][name] = 34
    (bad / "pack.json").write_text(json.dumps(record))
    with pytest.raises(PackError, match=name):
        unpack_clips(bad, tmp_path / "data")


# -- the run and what comes back --------------------------------------------------------------------------
def test_first_call_returns_every_file_within_the_limits(runs):
    files = {p.name: p.stat().st_size for p in (runs / "out1").iterdir()}
    assert set(files) == EXPECTED and len(files) <= 8
    assert all(size <= 16 * 2**20 for size in files.values())
    report = json.loads((runs / "out1" / REPORT_FILE).read_text())
    call = report["calls"][0]
    assert call["device"] == "cpu" and call["output_problems"] == [] and set(call["outputs"]) == EXPECTED
    assert call["seconds"] < BUDGET and not any(isinstance(v, dict) for v in call["stages"].values())  # no errors
    # the carried diffusers wheel was unpacked and imported
    assert Path(call["diffusers_from"]).is_relative_to(runs / "work" / "site")
    assert "diffusers: unpacked" in (runs / "out1" / LOG_FILE).read_text()
    ae, lat, unet, bench = report["autoencoder"], report["latents"], report["unet"], report["bench"]
    assert ae["done"] and ae["steps"] == ae["schedule_steps"] == 4 and ae["crop"] == 32
    assert len(ae["losses"]) == ae["steps"] // 25 and all(math.isfinite(loss) for _, loss in ae["losses"])
    assert lat["complete"] and lat["clips"] == 3 and len(lat["tasks"]) == 8
    assert unet["steps"] == 1 and unet["batch"] == 1 and unet["frames"] == 8 and unet["seed"] == 0
    assert unet["prediction_type"] == "v_prediction" and unet["lr"] == 3e-4
    assert [row[0] for row in unet["losses"]] == [1] and all(math.isfinite(r[1]) for r in unet["losses"])
    assert report["pack"]["clips"] == 3 and report["pack"]["validation_left_out"] == 1
    assert bench["done"] and bench["args"][-1] == "--smoke"
    assert "sequential / batched time" in (runs / "out1" / BENCH_FILE).read_text()


def test_returned_weights_load_with_the_project_loaders(runs, tmp_path):
    from vidiff_model import load_vidiff
    from vidiff_model.mini.autoencoder import MiniVAE

    joined = join_parts(runs / "out1", tmp_path / "vidiff_mini.safetensors")
    model = load_vidiff(joined)
    assert model.config.prediction_type == "v_prediction" and model.config.unet.in_channels == 8
    with safe_open(str(runs / "out1" / part_files(runs / "out1")[0].name), "pt") as f:
        assert f.metadata()["parts_of"] == "step 1" and f.metadata()["part"] == "1/3"
    vae = MiniVAE(runs / "out1" / VAE_FILE)
    raw = vae.encode(torch.rand(2, 32, 32, 3))
    assert raw.shape == (4, 2, 4, 4) and vae.decode(raw).shape == (2, 32, 32, 3)
    with safe_open(str(runs / "out1" / VAE_FILE), "pt") as f:
        assert f.get_tensor("taesd_decoder.1.weight").dtype == torch.float16  # fp16 export
        assert "val_psnr_db" not in f.metadata()  # no validation clip travelled


def test_second_call_resumes(runs, tmp_path):
    first = json.loads((runs / "out1" / REPORT_FILE).read_text())
    report = json.loads((runs / "out2" / REPORT_FILE).read_text())
    assert len(report["calls"]) == 2 and set(report["calls"][1]["outputs"]) == EXPECTED
    assert report["calls"][1]["config"]["unet_steps_per_call"] == "0"  # ended by the clock, not a step cap
    assert [c["resumed_from"] for c in report["unet"]["calls"]] == [0, 1] and report["unet"]["steps"] == 2
    assert [row[0] for row in report["unet"]["losses"]] == [1, 2]
    assert report["unet"]["losses"][:1] == first["unet"]["losses"]  # the first call's log, kept
    # finished stages are not redone: the same autoencoder file, the benchmark's output carried over
    assert (runs / "out2" / VAE_FILE).read_bytes() == (runs / "out1" / VAE_FILE).read_bytes()
    assert report["autoencoder"]["seconds"] == first["autoencoder"]["seconds"]
    assert report["bench"] == first["bench"]
    assert (runs / "out2" / BENCH_FILE).read_text() == (runs / "out1" / BENCH_FILE).read_text()
    a = join_parts(runs / "out1", tmp_path / "a.safetensors")
    b = join_parts(runs / "out2", tmp_path / "b.safetensors")
    with safe_open(str(a), "pt") as fa, safe_open(str(b), "pt") as fb:
        assert fb.metadata()["step"] == "2" and fa.metadata()["step"] == "1"
        assert any(not torch.equal(fa.get_tensor(k), fb.get_tensor(k)) for k in fa.keys())


def test_join_refuses_parts_of_different_saves(runs, tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy2(runs / "out1" / "vidiff_mini.part1of3.safetensors", mixed)
    for name in ("vidiff_mini.part2of3.safetensors", "vidiff_mini.part3of3.safetensors"):
        shutil.copy2(runs / "out2" / name, mixed)
    with pytest.raises(ValueError, match="different saves"):
        join_parts(mixed, tmp_path / "x.safetensors")
    (mixed / "vidiff_mini.part3of3.safetensors").unlink()
    with pytest.raises(ValueError, match="2 parts"):
        join_parts(mixed, tmp_path / "x.safetensors")


# -- pieces the micro run does not reach --------------------------------------------------------------------
def test_autoencoder_stops_at_its_deadline_and_resumes(root, tmp_path):
    from vidiff_model.mini.autoencoder import train

    path = train(root / "data", tmp_path / "vae", steps=50, batch=2, crop=16, deadline=time.monotonic())
    assert torch.load(tmp_path / "vae" / "state.pt", weights_only=True)["step"] == 1 and path.is_file()
    train(root / "data", tmp_path / "vae", steps=50, batch=2, crop=16, stop_at=3, export_file=False)
    assert torch.load(tmp_path / "vae" / "state.pt", weights_only=True)["step"] == 3


def test_autoencoder_stage_sizes_its_schedule_to_the_time_left(root, tmp_path):
    """The device path (no step cap): a timing probe, then a cosine schedule that fits before the deadline."""
    from vidiff_model.device_run.run import DeviceRunConfig
    from vidiff_model.device_run.stages import autoencoder_stage

    cfg = DeviceRunConfig(ae_batch=2, ae_crop=16, ae_probe_steps=3)
    report = {"pack": {"size": 32}}
    (tmp_path / "out").mkdir()
    start = time.monotonic()
    autoencoder_stage(cfg, report, root / "data", tmp_path, tmp_path / "out", start + 8, "cpu")
    ae = report["autoencoder"]
    assert ae["done"] and ae["probe_s_per_step"] > 0 and ae["crop"] == 16
    assert ae["schedule_steps"] >= 3 and 3 <= ae["steps"] <= ae["schedule_steps"]
    assert ae["finished_schedule"] == (ae["steps"] == ae["schedule_steps"])
    assert (tmp_path / "out" / VAE_FILE).is_file()


def test_bench_stage_is_cut_at_its_deadline(tmp_path):
    from vidiff_model.device_run.stages import bench_stage

    report: dict = {}
    start = time.monotonic()
    (tmp_path / "out").mkdir()
    bench_stage("full", report, tmp_path / "out", tmp_path, start + 1.0)
    assert time.monotonic() - start < 10  # its measurement children went down with it
    assert report["bench"]["timed_out"] and not report["bench"]["done"] and report["bench"]["returncode"] is None
    assert (tmp_path / "out" / BENCH_FILE).read_bytes() == (tmp_path / BENCH_FILE).read_bytes()


def test_latents_are_the_same_with_worker_processes(root, tmp_path):
    from vidiff_model.mini.latents import precompute

    vae = root / "work" / "vae" / VAE_FILE if (root / "work" / "vae" / VAE_FILE).exists() else None
    if vae is None:  # this test alone: an untrained autoencoder will do
        from vidiff_model.mini.autoencoder import export, new_autoencoder

        torch.manual_seed(0)
        vae = export(new_autoencoder(), root / "data", tmp_path / VAE_FILE)
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    for name in sorted(load_clips(root / "data" / "train"))[:2]:
        shutil.copy2(root / "data" / "train" / f"{name}.npy", data / "train")
    tasks = ("recolor", "style:sketch")
    one = precompute(data, vae, tmp_path / "one", 1, tasks)
    two = precompute(data, vae, tmp_path / "two", 1, tasks, workers=2)
    assert one["complete"] and two["complete"]
    files = sorted(p.name for p in (tmp_path / "one").glob("*.safetensors"))
    assert files == sorted(p.name for p in (tmp_path / "two").glob("*.safetensors")) and len(files) == 2
    for name in files:
        with safe_open(str(tmp_path / "one" / name), "pt") as a, safe_open(str(tmp_path / "two" / name), "pt") as b:
            assert set(a.keys()) == {"clean", *tasks}
            assert all(torch.equal(a.get_tensor(k), b.get_tensor(k)) for k in a.keys())
    late = precompute(data, vae, tmp_path / "late", 1, tasks, deadline=time.monotonic())
    assert not late["complete"] and len(list((tmp_path / "late").glob("*.safetensors"))) == 1


def _wheel(folder: Path, dist: str, version: str) -> Path:
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{dist}/__init__.py", f"VERSION = {version!r}\n")
        z.writestr(f"{dist}-{version}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        z.writestr(f"{dist}-{version}.data/purelib/{dist}_extra.py", "X = 1\n")
    return path


def test_wheels_are_unpacked_only_where_missing(tmp_path):
    from vidiff_model.device_run.wheels import install_missing

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "vidiff_absent_pkg", "1.0")
    _wheel(wheels, "numpy", "0.0.1")  # installed here: kept
    site = tmp_path / "site"
    report = install_missing(wheels, site)
    assert report == {"numpy": f"installed {np.__version__} (kept)", "vidiff_absent_pkg": "unpacked 1.0"}
    assert (site / "vidiff_absent_pkg" / "__init__.py").is_file() and (site / "vidiff_absent_pkg_extra.py").is_file()
    assert not (site / "numpy").exists() and not list(site.glob("*.data"))
    assert install_missing(wheels, site)["vidiff_absent_pkg"] == "already in site"
    assert install_missing(wheels, site, force=("numpy",))["numpy"] == "unpacked 0.0.1"
    r = subprocess.run([sys.executable, "-c", "import vidiff_absent_pkg, vidiff_absent_pkg_extra, importlib.metadata as m;"
                        "print(m.version('vidiff_absent_pkg'))"], env={**os.environ, "PYTHONPATH": str(site)},
                       capture_output=True, text=True)
    assert r.stdout.strip() == "1.0", r.stderr
    with pytest.raises(FileNotFoundError, match="device_pack.sh"):
        install_missing(tmp_path / "nowhere", site)
