"""What a new user meets first, read from the files (no server, no network): every template says what it does and
what it needs, and its card shows that whole (green when it runs on CPU); the Missing Models dialog of every
offered template can download each file it lists, the README installs the pack as it can be installed today, the
torch pins agree, the client names a missing file by the server's absolute path (and a build command that runs as
printed), and `python -m vidiff_model info` knows every file the pack ships."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import tomllib
from urllib.parse import urlparse

import numpy as np
import pytest
from comfy_harness import API_ALL, MODEL_FILES, ROOT, UI, UI_ALL
from fixture_files import motion_module_shapes

from vidiff_model.checkpoints import TensorFile, identify
from vidiff_model.remote.model_files import SOURCES, ServerFolders, missing_files
from vidiff_model.remote.templates import template

# What comfyui-frontend-package 1.32.9's Missing Models dialog downloads (MissingModelsWarning): a name with one
# of these suffixes, from a URL starting with one of these hosts; anything else it shows in red.
DIALOG_SUFFIXES = (".safetensors", ".sft")
DIALOG_HOSTS = ("huggingface.co", "civitai.com")
README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(UI_ALL))
def test_every_template_says_what_it_does_and_what_it_needs_and_its_card_shows_it(name):
    from PIL import Image

    info = template(name)
    downloads = [m["name"] for n in UI_ALL[name]["nodes"] for m in n["properties"].get("models", [])]
    # "runs on CPU with the shipped model" exactly where nothing is to be downloaded: the vidiff-mini templates
    assert info.runs_on_cpu == (not downloads) == name.startswith("vidiff_mini_"), (info.needs, downloads)
    assert info.does and info.needs and info.description.endswith(".")
    if name not in UI:  # experimental: not in the browser (its card is redrawn with its next measured run)
        return
    card = ROOT / "workflows" / f"{name}.jpg"
    with Image.open(card) as im:
        # square: the browser's square box shows it whole (taller pictures lost their title's top)
        assert im.width == im.height >= 320, im.size
        badge = np.asarray(im.convert("RGB").crop((0, 50, im.width, 92)), dtype=int)
        colour = (31, 122, 58) if info.runs_on_cpu else (138, 90, 0)
        near = int((np.abs(badge - colour).max(-1) < 30).sum())
        assert near > 2000, f"{card.name}: the badge's colour {colour} ({near} px)"  # green: runs on CPU


def test_a_template_without_a_description_is_named():
    with pytest.raises(ValueError, match="template 'vidiff_nothing': no description .* known: compare_guidance"):
        template("vidiff_nothing")


@pytest.mark.parametrize("name", sorted(UI))
def test_the_missing_models_dialog_can_download_every_file_an_offered_template_lists(name):
    for node in UI[name]["nodes"]:
        for model in node["properties"].get("models", []):
            where = f"{name}: node {node['id']} ({node['type']}) lists {model['name']}"
            assert model["name"].endswith(DIALOG_SUFFIXES), f"{where}: the dialog downloads only {DIALOG_SUFFIXES}"
            url = urlparse(model["url"])
            assert url.scheme == "https" and url.hostname in DIALOG_HOSTS, f"{where} from {model['url']}"
            assert url.path.endswith(DIALOG_SUFFIXES), f"{where}: {model['url']} is not a weight file's download"
            assert model["name"] in node["widgets_values"], f"{where}: the dialog matches the widget's value"


def test_full_size_templates_load_the_safetensors_motion_module():
    name = MODEL_FILES["animatediff_models"]
    source = SOURCES[name]
    assert name.endswith(".safetensors") and source.directory == "animatediff_models"
    assert source.url == "https://huggingface.co/conrevo/AnimateDiff-A1111/resolve/main/motion_module/" + name
    # the published file is 909 MB: exactly the original-layout v2 tensors, pos_encoder.pe tables included, in
    # fp16, which the test server's fixture (fixture_files.motion_module_tensors) writes under this name
    size = sum(math.prod(s) for s in motion_module_shapes("v2").values()) * 2
    assert round(size / 1e6) == source.megabytes == 909
    assert SOURCES["mm_sd_v15_v2.ckpt"].directory == "animatediff_models"  # the first published file still works
    used = {m["name"] for w in UI.values() for n in w["nodes"] for m in n["properties"].get("models", [])}
    assert name in used and "mm_sd_v15_v2.ckpt" not in used


def test_the_first_published_ckpt_reads_as_the_safetensors_does(tmp_path):
    import torch
    from fixture_files import motion_module_tensors, save_tensors

    from vidiff_model.checkpoints.motion_module import read_motion_module

    tensors = motion_module_tensors("v2", block_out_channels=(32, 64, 128, 128))
    ckpt, safetensors = (read_motion_module(save_tensors(tmp_path / name, tensors), any_size=True)
                         for name in ("mm_sd_v15_v2.ckpt", MODEL_FILES["animatediff_models"]))
    assert ckpt[1:] == safetensors[1:] == ("v2", 32, True)
    assert ckpt[0].keys() == safetensors[0].keys() == tensors.keys()
    assert all(torch.equal(ckpt[0][k], safetensors[0][k]) for k in tensors)


def test_readme_installs_the_pack_as_it_can_be_installed_today():
    assert "ComfyUI Manager: search" not in README  # not published yet
    assert "cd ComfyUI/custom_nodes && git clone https://github.com/vidiff-comfyui/ComfyUI-VIDiff" in README
    comfy = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"]
    icon = re.fullmatch(r"https://raw\.githubusercontent\.com/vidiff-comfyui/ComfyUI-VIDiff/main/(.+)", comfy["Icon"])
    assert icon, comfy["Icon"]
    from PIL import Image

    with Image.open(ROOT / icon[1]) as im:  # the registry shows it square, at most 400 px
        assert im.width == im.height <= 400, im.size


def test_readme_own_footage_in_the_ui_is_one_swap_or_bypasses_the_degradation_by_hand():
    steps = README.split("### In the UI", 1)[1].split("\n## ", 1)[0]
    for needle in ("Swap for VIDiff Load Video", "VIDiff Load Video (vidiff-mini)", "pass them through",
                   "LoadVideo", "GetVideoComponents", "128 × 128", "length 16", "bypass VIDiff Degrade Video", "Ctrl+B",
                   "VIDiff Video Metrics"):
        assert needle in steps, needle
    menu = (ROOT / "web" / "vidiff.js").read_text()
    assert 'content: "Swap for VIDiff Load Video (your own video)"' in menu  # the menu entry the steps name


def test_torch_pins_agree_between_requirements_scripts_readme_and_venv():
    import torch

    pins = dict(re.findall(r"^(torch|torchvision|torchaudio)==(\S+)$", (ROOT / "requirements-dev.txt").read_text(),
                           flags=re.M))
    assert set(pins) == {"torch", "torchvision", "torchaudio"}, pins
    setup = (ROOT / "scripts" / "setup_venv.sh").read_text()
    assert "grep -E '^torch(vision|audio)?==' requirements-dev.txt" in setup  # installs those very lines
    assert not re.search(r"install[^\n]*\btorch==", setup), "a second torch pin in setup_venv.sh"
    said = re.search(r"installs torch (\S+) \+ torchvision (\S+) .*?torchaudio (\S+)", README, flags=re.S)
    assert said and said.groups() == (pins["torch"], pins["torchvision"], pins["torchaudio"]), said
    assert torch.__version__.split("+")[0] == pins["torch"]


def _shipped() -> dict[str, tuple[dict, dict]]:
    """Every weight file of the pack's models/ (name -> shapes, metadata); the text encoder, generated at first
    start, from the layout it is generated in."""
    from vidiff_model.mini.text_encoder import clip_l_layout

    files = {p.name: (TensorFile(p).shapes, TensorFile(p).metadata) for p in (ROOT / "models").rglob("*.safetensors")}
    files["vidiff_mini_clip_l.safetensors"] = ({k: shape for k, (shape, _, _) in clip_l_layout().items()}, {})
    return files


def test_info_recognises_every_file_the_pack_ships():
    kinds = {name: identify(shapes, metadata).kind for name, (shapes, metadata) in _shipped().items()}
    assert kinds["vidiff_mini.safetensors"] == "vidiff"
    assert kinds["vidiff_mini_vae.safetensors"] == "taesd"
    assert kinds["vidiff_mini_clip_l.safetensors"] == "clip_text"
    assert "unknown" not in kinds.values(), kinds
    files = sorted((ROOT / "models").rglob("*.safetensors"))
    out = subprocess.run([sys.executable, "-m", "vidiff_model", "info", *map(str, files)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "no known model format" not in out.stdout, out.stdout + out.stderr
    assert "a TAESD tiny autoencoder" in out.stdout and "a VIDiff checkpoint" in out.stdout


def test_missing_files_are_named_by_the_servers_absolute_folders_with_a_build_command_that_runs(tmp_path):
    comfy = tmp_path / "Comfy UI"  # a space: the command quotes its paths
    folders = ServerFolders({f: [str(comfy / "models" / f), "/elsewhere"] for f in
                             ("checkpoints", "animatediff_models", "vidiff", "vae", "text_encoders", "clip_vision")},
                            str(comfy / "input"), str(ROOT), sys.executable)
    lines = missing_files(API_ALL["style_image"], lambda kind, name: [], folders=folders)
    assert len(lines) == 6 and all(line.startswith(str(comfy) + "/") for line in lines), lines
    assert f"{comfy}/models/vae/vae-ft-mse-840000-ema-pruned.safetensors (node" in "\n".join(lines)
    assert f"{comfy}/input/vidiff_style.png (node" in "\n".join(lines)
    build = next(line for line in lines if "/vidiff_sd15.safetensors (" in line)
    command = build.split("made, not downloaded: ", 1)[1].split(" (--image-tokens starts", 1)[0]
    assert command.startswith(f"cd {ROOT} && {sys.executable} -m vidiff_model build --unet "), command
    # run as printed, from elsewhere: it reaches the build, which names the first part it lacks, where it belongs
    out = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    missing = comfy / "models" / "checkpoints" / "instruct-pix2pix-00-22000.safetensors"
    assert out.returncode == 2 and out.stderr.strip() == f"error: {missing}: no such file", out.stderr
    assert (comfy / "models" / "vidiff").is_dir()  # the output's folder is made before the build: it saves there
    relative = missing_files(API_ALL["style_image"], lambda kind, name: [])  # a server that names no folders
    assert "models/checkpoints/instruct-pix2pix-00-22000.safetensors --motion-module" in "\n".join(relative)
