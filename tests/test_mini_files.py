"""vidiff-mini's files: the seeded text encoder (pinned bytes, ComfyUI's clip_l layout), the sample-clip
loader, and, through a real ComfyUI server, the pack's own model folders in the host's loaders.

The VAE and VIDiff checkpoint are produced by the training command; their tests use the shipped files
and are skipped (saying so) until those files exist."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vidiff_model.errors import VIDiffError
from vidiff_model.mini import EXAMPLES_DIR, MINI_TEXT_ENCODER, MINI_VAE, MINI_VIDIFF, MODELS_DIR, SAMPLE_CLIP
from vidiff_model.mini.samples import list_sample_clips, load_sample_clip
from vidiff_model.mini.text_encoder import clip_l_layout, ensure_clip_l, generate_clip_l

# `python -m vidiff_model.mini.text_encoder` writes exactly these bytes on every machine.
CLIP_L_SHA256 = "0307a512c211cc306a01e24e31477b482a4933029641f06a4d4e6104fc577747"
CLIP_L_BYTES = 247_323_896


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


@pytest.fixture(scope="module")
def clip_l(tmp_path_factory) -> Path:
    return ensure_clip_l(tmp_path_factory.mktemp("clip_l") / MINI_TEXT_ENCODER.name)


def test_text_encoder_bytes_are_pinned(clip_l):
    assert clip_l.stat().st_size == CLIP_L_BYTES
    assert _sha256(clip_l) == CLIP_L_SHA256
    assert [p.name for p in clip_l.parent.iterdir()] == [clip_l.name]  # no temporary file left behind
    if MINI_TEXT_ENCODER.is_file():  # the copy the pack generated for the host
        assert MINI_TEXT_ENCODER.stat().st_size == CLIP_L_BYTES


def test_text_encoder_generation_is_deterministic(clip_l, tmp_path):
    again = generate_clip_l(tmp_path / "again.safetensors")
    with open(clip_l, "rb") as a, open(again, "rb") as b:
        while True:
            x, y = a.read(1 << 24), b.read(1 << 24)
            assert x == y
            if not x:
                break
    placeholder = tmp_path / "there.safetensors"
    placeholder.write_bytes(b"kept")
    assert ensure_clip_l(placeholder) == placeholder and placeholder.read_bytes() == b"kept"  # never overwritten


def test_text_encoder_has_comfyui_clip_l_layout(clip_l):
    """Every tensor of the host's SD-1.5 CLIP text model (comfy.sd1_clip.SD1ClipModel, what CLIPLoader builds),
    same shapes, fp16, nothing else; the init scales are CLIP's."""
    from comfy_harness import comfyui_path
    from safetensors import safe_open

    code = ("import sys, json; sys.argv = sys.argv[:1] + ['--cpu']\n"
            "import comfy.options; comfy.options.enable_args_parsing()\n"
            "import comfy.sd1_clip\n"
            "sd = comfy.sd1_clip.SD1ClipModel(device='cpu').state_dict()\n"
            "print(json.dumps({k: list(v.shape) for k, v in sd.items()}))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=comfyui_path(), env=env, capture_output=True, text=True,
                         check=True)
    prefix = "clip_l.transformer."  # SD1ClipModel loads a clip_l file into this module (logit_scale is its own)
    host = {k[len(prefix):]: v for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items() if k.startswith(prefix)}
    assert len(host) == 197 and "text_projection.weight" in host
    with safe_open(str(clip_l), "np") as f:
        ours = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}
        token = f.get_tensor("text_model.embeddings.token_embedding.weight").astype(np.float32)
        fc2 = f.get_tensor("text_model.encoder.layers.3.mlp.fc2.weight").astype(np.float32)
        norm = f.get_tensor("text_model.encoder.layers.11.layer_norm2.weight")
        bias = f.get_tensor("text_model.encoder.layers.0.self_attn.q_proj.bias")
    assert ours == host
    assert set(clip_l_layout()) == set(host)
    assert token.std() == pytest.approx(0.02, rel=0.01) and abs(token.mean()) < 1e-4
    assert fc2.std() == pytest.approx(768 ** -0.5 * 24 ** -0.5, rel=0.02)
    assert (norm == 1).all() and (bias == 0).all()


def test_text_encoder_reads_instructions_apart(clip_l):
    """The training side (transformers CLIPTextModel via load_text_model, ComfyUI's tokenizer) reads the file;
    different instructions give clearly different hidden states."""
    from comfy_harness import comfyui_path

    from vidiff_model.training.encoders import load_text_model

    enc = load_text_model(str(clip_l), str(comfyui_path() / "comfy" / "sd1_tokenizer"))
    prompts = ["Remove the applied haze from this video", "Turn the video to Sketch Style.",
               "Turn the video to Watercolor Style.", ""]
    hidden = enc.encode(prompts).float()  # (4, 77, 768)
    assert hidden.shape == (4, 77, 768) and torch.isfinite(hidden).all()
    mean = torch.nn.functional.normalize(hidden.mean(1), dim=-1)
    cos = mean @ mean.T
    off = cos[~torch.eye(4, dtype=torch.bool)]
    assert off.max() < 0.995, cos  # one word apart (Sketch / Watercolor) still differs
    assert cos[0, 1] < 0.95, cos  # different tasks differ more


# -- sample clips -----------------------------------------------------------------------------------

def _write_webp(path: Path, frames: int, width: int, height: int, fps: int) -> None:
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width]
    images = [Image.fromarray(np.stack([(x * 4 + i * 24) % 256, (y * 5) % 256, np.full_like(x, 90)], -1)
                              .astype(np.uint8)) for i in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=1000 // fps, loop=0, lossless=True)


def test_load_sample_clip(tmp_path):
    _write_webp(tmp_path / "b.webp", 5, 40, 24, 8)
    (tmp_path / "notes.txt").write_text("not a clip")
    assert list_sample_clips(tmp_path) == ["b.webp"] and list_sample_clips(tmp_path / "missing") == []
    frames, fps = load_sample_clip("b.webp", folder=tmp_path)
    assert frames.shape == (5, 24, 40, 3) and frames.dtype == torch.float32 and fps == 8.0
    assert 0 <= frames.min() and frames.max() <= 1
    first, _ = load_sample_clip("b.webp", frames=2, folder=tmp_path)
    torch.testing.assert_close(first, frames[:2])
    with pytest.raises(VIDiffError, match="clip: 'a.webp' is not a sample clip.*b.webp"):
        load_sample_clip("a.webp", folder=tmp_path)
    with pytest.raises(VIDiffError, match="frames: -1"):
        load_sample_clip("b.webp", frames=-1, folder=tmp_path)


# -- in the host ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_clip():
    """The shipped sample clip's name, or (until it lands) a temporary 64x48 clip in the pack's sample_clips/."""
    if SAMPLE_CLIP.is_file():
        yield SAMPLE_CLIP.name
        return
    made = not EXAMPLES_DIR.exists()
    EXAMPLES_DIR.mkdir(exist_ok=True)
    path = EXAMPLES_DIR / f"vidiff_test_clip_{os.getpid()}.webp"
    _write_webp(path, 5, 64, 48, 8)
    try:
        yield path.name
    finally:
        path.unlink(missing_ok=True)
        if made and not any(EXAMPLES_DIR.iterdir()):
            EXAMPLES_DIR.rmdir()


def _options(spec: list) -> list[str]:
    """Combo options from object_info, V1 (`[[...], {...}]`) or V3 (`["COMBO", {"options": [...]}]`)."""
    return spec[0] if isinstance(spec[0], list) else spec[1]["options"]


def _run(server, prompt: dict, timeout: float = 300) -> dict:
    result = server.run(prompt, timeout=timeout)
    assert result["status"] == "success", result.get("error") or server.log_text()[-3000:]
    return result


def _require(path: Path, what: str) -> None:
    if not path.is_file():
        pytest.skip(f"{path.relative_to(MODELS_DIR.parent)} ({what}) is not there yet: made by the training command")


@pytest.mark.comfyui
def test_pack_folders_follow_the_users(server):
    paths = server.get("/internal/folder_paths")
    for name, pack in (("vae", MINI_VAE), ("text_encoders", MINI_TEXT_ENCODER), ("vidiff", MINI_VIDIFF)):
        folders = [str(Path(p)) for p in paths[name]]
        assert str(pack.parent) in folders, (name, folders)
        assert folders[0] != str(pack.parent)  # the user's own folder stays first (it wins on a name clash)
    info = server.get("/object_info")
    assert MINI_TEXT_ENCODER.name in _options(info["CLIPLoader"]["input"]["required"]["clip_name"])
    loader = info["VIDiffLoadSampleClip"]
    assert loader["category"] == "VIDiff/loaders" and all(loader["output_tooltips"])
    for section in ("required", "optional"):
        for name, spec in loader["input"].get(section, {}).items():
            assert spec[1].get("tooltip"), name


@pytest.mark.comfyui
def test_cliploader_reads_the_generated_text_encoder(server):
    """The pack generated the text encoder at load; the host's CLIPLoader finds every tensor in it."""
    assert _sha256(MINI_TEXT_ENCODER) == CLIP_L_SHA256
    start = len(server.log_text())
    prompt = {
        "1": {"class_type": "CLIPLoader", "inputs": {"clip_name": MINI_TEXT_ENCODER.name, "type": "stable_diffusion"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 0], "text": "Remove the applied haze from this video"}},
        "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 0]}},
    }
    _run(server, prompt)
    assert "clip missing" not in server.log_text()[start:]


@pytest.mark.comfyui
def test_sample_clip_feeds_vae_encode(server, sample_clip):
    from comfy_harness import MODEL_FILES, webp_info

    vae = MINI_VAE.name if MINI_VAE.is_file() else MODEL_FILES["vae"]  # the mini VAE is faster; either works
    prompt = {
        "1": {"class_type": "VIDiffLoadSampleClip", "inputs": {"clip": sample_clip, "frames": 3}},
        "2": {"class_type": "VAELoader", "inputs": {"vae_name": vae}},
        "3": {"class_type": "VAEEncode", "inputs": {"pixels": ["1", 0], "vae": ["2", 0]}},
        "4": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["2", 0]}},
        "5": {"class_type": "SaveAnimatedWEBP", "inputs": {"images": ["4", 0], "fps": ["1", 1], "lossless": True,
                                                            "quality": 80, "method": "fastest",
                                                            "filename_prefix": "VIDiff/mini_clip"}},
        "6": {"class_type": "PreviewAny", "inputs": {"source": ["1", 2]}},
    }
    result = _run(server, prompt)
    outputs = result["history"]["outputs"]
    assert outputs["6"]["text"] == ["3"]
    item = outputs["5"]["images"][0]
    frames, width, height, durations = webp_info(server.workdir / "output" / item["subfolder"] / item["filename"])
    clip_frames, fps = load_sample_clip(sample_clip)
    assert frames == 3 and abs(width - clip_frames.shape[2]) < 8 and abs(height - clip_frames.shape[1]) < 8
    assert durations == [int(1000.0 / fps)] * 3  # what SaveAnimatedWEBP writes for the fps it was given


@pytest.mark.comfyui
def test_mini_vae_in_the_hosts_vaeloader(server, sample_clip):
    _require(MINI_VAE, "vidiff-mini autoencoder")
    info = server.get("/object_info")
    assert MINI_VAE.name in _options(info["VAELoader"]["input"]["required"]["vae_name"])
    prompt = {
        "1": {"class_type": "VIDiffLoadSampleClip", "inputs": {"clip": sample_clip, "frames": 2}},
        "2": {"class_type": "VAELoader", "inputs": {"vae_name": MINI_VAE.name}},
        "3": {"class_type": "VAEEncode", "inputs": {"pixels": ["1", 0], "vae": ["2", 0]}},
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}},
    }
    _run(server, prompt)


@pytest.mark.comfyui
def test_mini_vidiff_in_the_hosts_loader(server):
    _require(MINI_VIDIFF, "vidiff-mini checkpoint")
    info = server.get("/object_info")
    assert MINI_VIDIFF.name in _options(info["VIDiffModelLoader"]["input"]["required"]["model_name"])
    prompt = {
        "1": {"class_type": "VIDiffModelLoader", "inputs": {"model_name": MINI_VIDIFF.name, "weight_dtype": "auto"}},
        "2": {"class_type": "CLIPLoader", "inputs": {"clip_name": MINI_TEXT_ENCODER.name, "type": "stable_diffusion"}},
        "3": {"class_type": "VIDiffInstructionEncode",
              "inputs": {"model": ["1", 0], "clip": ["2", 0], "instruction": "Remove the applied haze from this video"}},
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}},
    }
    _run(server, prompt)
