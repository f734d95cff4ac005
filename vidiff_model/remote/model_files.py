"""The files the pack's workflows load, where each goes and where it comes from; and, for a workflow about to be
queued, every such file the server lacks, named in one message.

SOURCES feeds both the client's check (before queueing) and the templates' missing-model metadata (each loader
node's `properties.models`: name, url, directory, which the frontend's Missing Models dialog lists). URLs are
where a person downloads a file; nothing here fetches them.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import UsageError
from .workflow import Prompt, describe


@dataclass(frozen=True)
class Source:
    """Where one file goes (`directory`, a ComfyUI models folder) and how to get it: a download `url`, or a
    command that `make`s it (`python -m vidiff_model build`), or the pack itself (`ships`)."""

    directory: str
    url: str = ""
    make: tuple = ()  # a `python` command's arguments, (folder, file) for a file in a models folder
    note: str = ""
    ships: bool = False
    megabytes: int = 0  # the published file's size, where it is known

    def how(self, folders: "ServerFolders | None" = None) -> str:
        if self.ships:
            return "ships with the pack (restart ComfyUI with the pack installed; see its README)"
        if self.make:
            command = (folders or ServerFolders()).command(self.make)
            return f"made, not downloaded: {command}" + (f" ({self.note})" if self.note else "")
        return f"download {self.url}" + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class ServerFolders:
    """Where a server keeps its files (GET /vidiff/folders, the pack's route; or only the model folders, from the
    host's GET /experiment/models): absolute paths, the first of a folder's paths being where new files go.
    Empty: unknown, and paths are named relative to the ComfyUI folder."""

    models: dict[str, list[str]] = field(default_factory=dict)
    input: str = ""
    pack: str = ""  # the pack's folder on the server
    python: str = ""  # the server's interpreter, which has the pack's requirements

    def model_dir(self, folder: str) -> str:
        return (self.models.get(folder) or [f"models/{folder}"])[0]

    def input_dir(self) -> str:
        return self.input or "input"

    def command(self, args: tuple) -> str:
        """A `python -m vidiff_model ...` command line that runs as printed: in the pack's folder, with the
        server's Python, on the server's folders (a (folder, file) argument is that file's path there)."""
        paths = [f"{self.model_dir(a[0])}/{a[1]}" if isinstance(a, tuple) else a for a in args]
        line = shlex.join([self.python or "python", *paths])
        if self.pack:
            return f"cd {shlex.quote(self.pack)} && {line}"
        return f"{line} (in the pack's folder, with the Python that runs ComfyUI)"


REPOSITORY = "https://github.com/vidiff-comfyui/ComfyUI-VIDiff"  # pyproject.toml's [project.urls]
MOTION_MODULE = "mm_sd15_v2.safetensors"  # AnimateDiff v2 as fp16 safetensors, which the Missing Models dialog fetches
BUILD = ("-m", "vidiff_model", "build", "--unet", ("checkpoints", "instruct-pix2pix-00-22000.safetensors"),
         "--motion-module", ("animatediff_models", MOTION_MODULE), "--image-tokens", "4",
         "--out", ("vidiff", "vidiff_sd15.safetensors"))
SOURCES: dict[str, Source] = {
    "instruct-pix2pix-00-22000.safetensors": Source(
        "checkpoints", "https://huggingface.co/timbrooks/instruct-pix2pix/resolve/main/"
                       "instruct-pix2pix-00-22000.safetensors", megabytes=7700),
    MOTION_MODULE: Source(  # guoyww's mm_sd_v15_v2.ckpt as fp16 safetensors, original layout (pos_encoder.pe kept)
        "animatediff_models", "https://huggingface.co/conrevo/AnimateDiff-A1111/resolve/main/motion_module/"
                              + MOTION_MODULE, megabytes=909),
    "mm_sd_v15_v2.ckpt": Source(  # the same module as first published (fp32): read too, for those who have it
        "animatediff_models", "https://huggingface.co/guoyww/animatediff/resolve/main/mm_sd_v15_v2.ckpt"),
    "clip_l.safetensors": Source(
        "text_encoders", "https://huggingface.co/comfyanonymous/flux_text_encoders/resolve/main/clip_l.safetensors"),
    "vae-ft-mse-840000-ema-pruned.safetensors": Source(
        "vae", "https://huggingface.co/stabilityai/sd-vae-ft-mse-original/resolve/main/"
               "vae-ft-mse-840000-ema-pruned.safetensors"),
    "clip-vit-large-patch14.safetensors": Source(
        "clip_vision", "https://huggingface.co/openai/clip-vit-large-patch14/resolve/main/model.safetensors",
        note="its model.safetensors, saved under this name"),
    "vidiff_sd15.safetensors": Source(  # the url is the build's documentation: the dialog names the file with it
        "vidiff", url=f"{REPOSITORY}/blob/main/docs/model_files.md#build-a-vidiff-file-from-parts", make=BUILD,
        note="--image-tokens starts an untrained image MLP: train it for style_image"),
    # IP-Adapter (ComfyUI_IPAdapter_plus): the SD-1.5 adapter and the ViT-H image encoder it was trained with
    "ip-adapter_sd15.safetensors": Source(
        "ipadapter", "https://huggingface.co/h94/IP-Adapter/resolve/main/models/ip-adapter_sd15.safetensors"),
    "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors": Source(
        "clip_vision", "https://huggingface.co/h94/IP-Adapter/resolve/main/models/image_encoder/model.safetensors",
        note="its model.safetensors, saved under this name (the name IPAdapter_plus looks for)"),
    "sd15_style_lora.safetensors": Source(
        "loras", note="any SD-1.5 LoRA of yours; the template's slot is bypassed until you pick one"),
    "vidiff_mini.safetensors": Source("vidiff", ships=True),
    "vidiff_mini_vae.safetensors": Source("vae", ships=True),
    "vidiff_mini_clip_l.safetensors": Source(
        "text_encoders", ships=True, note="generated into the pack's models/text_encoders at ComfyUI's start"),
}
# (node type, input) -> the models folder it lists, for files SOURCES does not know.
LOADER_FOLDERS = {
    ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints", ("VAELoader", "vae_name"): "vae",
    ("CLIPLoader", "clip_name"): "text_encoders", ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("LoraLoaderModelOnly", "lora_name"): "loras", ("LoraLoader", "lora_name"): "loras",
    ("UNETLoader", "unet_name"): "diffusion_models", ("VIDiffModelLoader", "model_name"): "vidiff",
    ("VIDiffApplyMotionModule", "motion_module"): "animatediff_models",
    ("IPAdapterModelLoader", "ipadapter_file"): "ipadapter",
    ("VIDiffModelFromParts", "unet_name"): "checkpoints",
    ("VIDiffModelFromParts", "motion_module"): "animatediff_models",
}
INPUT_LOADERS = {("LoadVideo", "file"), ("LoadImage", "image"), ("LoadImageMask", "image")}


def combo_options(spec: Any) -> list[str] | None:
    """The choices of an /object_info input spec when it is a list of names (old `[[...], {}]` or V3
    `["COMBO", {"options": [...]}]`); None for any other input."""
    if isinstance(spec, list) and spec:
        if isinstance(spec[0], list):
            return [str(v) for v in spec[0]]
        if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
            return [str(v) for v in spec[1].get("options", [])]
    return None


def missing_files(prompt: Prompt, options: Any, ignore: set[str] = frozenset(),
                  folders: ServerFolders | None = None) -> list[str]:
    """One line per file the workflow names and the server does not list: where it goes and how to get it.

    Args:
        options: (class_type, input) -> the server's choices for that input (None: not a list input).
        ignore: node ids not checked (the LoadVideo a --video will fill).
        folders: the server's folders, to name absolute paths (None: relative to the ComfyUI folder).
    """
    folders = folders or ServerFolders()
    lines = []
    for node_id, node in prompt.items():
        if node_id in ignore:
            continue
        kind = node["class_type"]
        for name, value in node["inputs"].items():
            key = (kind, name)
            if not isinstance(value, str) or (key not in LOADER_FOLDERS and key not in INPUT_LOADERS):
                continue
            choices = options(kind, name)
            if choices is None or value in choices:
                continue
            where = f"node {describe(prompt, node_id)}, {name}"
            if key in INPUT_LOADERS:
                lines.append(f"{folders.input_dir()}/{value} ({where}): an input file: put it in ComfyUI's input "
                             "folder" + (", or pass --video FILE" if kind == "LoadVideo" else ""))
                continue
            source = SOURCES.get(value)
            folder = source.directory if source else LOADER_FOLDERS[key]
            how = source.how(folders) if source else "not a file the pack knows: pick one the server lists"
            lines.append(f"{folders.model_dir(folder)}/{value} ({where}): {how}")
    return lines


def check_files(prompt: Prompt, options: Any, workflow: str, ignore: set[str] = frozenset(),
                folders: Callable[[], ServerFolders | None] = lambda: None) -> None:
    """Raises one UsageError naming every missing file (see missing_files), or returns. `folders` is asked only
    when a file is missing."""
    if not missing_files(prompt, options, ignore):
        return
    where = folders()
    lines = missing_files(prompt, options, ignore, where)
    place = "the server's folders" if where and where.models else "paths relative to the ComfyUI folder"
    raise UsageError(f"{workflow} needs {len(lines)} file{'s' if len(lines) > 1 else ''} the server does not have "
                     f"({place}; restart or refresh after adding them):\n  " + "\n  ".join(lines))


def template_models(class_type: str, inputs: dict) -> list[dict]:
    """The frontend's missing-model metadata for one loader node of a template: [{name, url, directory}], for the
    files it loads that have a URL (the dialog lists only those; for a built file, the page on building it)."""
    out = []
    for name, value in inputs.items():
        source = SOURCES.get(value) if isinstance(value, str) else None
        if (class_type, name) in LOADER_FOLDERS and source and source.url:
            out.append({"name": value, "url": source.url, "directory": source.directory})
    return out
