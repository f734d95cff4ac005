"""What each template does and what it needs, in one line: for the template browser's cards (their pictures, drawn
by scripts/make_template_cards.py, and their description line, which the pack's GET /vidiff/templates serves to
web/vidiff_templates.js), the README and the client.

ComfyUI 0.3.75 lists a custom node's templates by file name only (GET /workflow_templates: {pack: [names]}), and
comfyui-frontend-package 1.32.9 shows that name as the card's title and, with "_" as spaces, as its description:
it reads no description from the workflow file or elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model_files import MOTION_MODULE, SOURCES

IP2P = "instruct-pix2pix-00-22000.safetensors"


def download_gb(*files: str) -> float:
    """The published size of these files together, in GB."""
    return sum(SOURCES[f].megabytes for f in files) / 1000


FULL_SIZE_GB = download_gb(IP2P, MOTION_MODULE)
RUNS_ON_CPU = "runs on CPU with the shipped model"
VHS_URL = "https://github.com/Kosinkadink/ComfyUI-VideoHelperSuite"  # the Meta Batch templates' custom node pack
NEEDS_FULL_SIZE = f"needs InstructPix2Pix + AnimateDiff v2, ~{FULL_SIZE_GB:.1f} GB, GPU recommended"


@dataclass(frozen=True)
class Template:
    """`title`: a few words for the card; `does`: what it does (the card's description line, at most two lines of
    the browser's card); `needs`: what it takes to run; `badge`: that, in a few words (on the card's picture)."""

    title: str
    does: str
    needs: str
    badge: str

    @property
    def runs_on_cpu(self) -> bool:
        return self.needs.startswith(RUNS_ON_CPU)

    @property
    def description(self) -> str:
        return f"{self.does}; {self.needs}."


def _mini(title: str, does: str) -> Template:
    return Template(title, does, RUNS_ON_CPU, "Runs on CPU · shipped model")


def _full(title: str, does: str, needs: str = NEEDS_FULL_SIZE, badge: str = f"GPU · {FULL_SIZE_GB:.1f} GB download"):
    return Template(title, does, needs, badge)


STYLES = ("sketch", "watercolor", "sepia", "cartoon")
TEMPLATES: dict[str, Template] = {  # by the name of the template's file: workflows/vidiff_<name>.json
    "mini_dehaze": _mini("Dehaze", "Removes haze from the sample clip (hazed here) or your video"),
    "mini_inpaint": _mini("Inpaint", "Fills holes cut into the sample clip or your video"),
    "mini_recolor": _mini("Recolor", "Colours the sample clip (made gray) or your video"),
    "mini_deblur": _mini("Deblur", "Sharpens the sample clip (blurred here) or your video"),
    **{f"mini_style_{s}": _mini(f"{s.capitalize()} style", f"Turns a video into {s} style") for s in STYLES},
    "mini_long_video": _mini("Long video", "Recolours a gray video of any length, 16 frames at a time"),
    "mini_long_video_batched": Template(
        "Long video, batched", "Dehazes in bounded memory, frames_per_batch at a time",
        f"{RUNS_ON_CPU}; videos of any length; needs ComfyUI-VideoHelperSuite ({VHS_URL})",
        "CPU · needs VideoHelperSuite"),
    "recolor": _full("Recolor", "Colours your gray video (an optional LoRA slot, bypassed)"),
    "dehaze": _full("Dehaze", "Removes haze from your video"),
    "deblur": _full("Deblur", "Sharpens your blurry video"),
    "inpaint": _full("Inpaint", "Fills the holes a mask marks in your video"),
    "segmentation": _full("Segment by text", "Paints the object you name red and saves its mask as a video"),
    "style_text": _full("Style from text", "Restyles your video as the instruction says (Sketch style)"),
    "style_image": _full("Style from an image", "Restyles your video like a picture (experimental)",
                         "needs a VIDiff checkpoint with a trained image MLP, which nobody publishes yet",
                         "Experimental · no checkpoint yet"),
    "style_ip_adapter": _full("Style from a picture", "Restyles your video like a picture, through IP-Adapter",
                              f"needs InstructPix2Pix + AnimateDiff v2 (~{FULL_SIZE_GB:.1f} GB) + "
                              "ComfyUI_IPAdapter_plus and its 2 files, GPU recommended", "GPU · IPAdapter_plus + 4 downloads"),
    "long_video": _full("Long video", "Restyles a video of any length (Watercolor), clip by clip"),
    "long_video_batched": _full("Long video, batched", "Restyles in bounded memory, frames_per_batch at a time",
                                f"videos of any length; needs InstructPix2Pix + AnimateDiff v2 "
                                f"(~{FULL_SIZE_GB:.1f} GB) + ComfyUI-VideoHelperSuite ({VHS_URL}), GPU recommended",
                                "GPU · VideoHelperSuite"),
    "compare_guidance": _full("Compare settings", "Dehazes your video at two guidance scales and scores both"),
}


def template(name: str) -> Template:
    """The entry of a template, by its name with or without `vidiff_`; a ValueError names the known ones."""
    key = name.removeprefix("vidiff_")
    if key not in TEMPLATES:
        raise ValueError(f"template {name!r}: no description in vidiff_model/remote/templates.py TEMPLATES; "
                         f"known: {', '.join(sorted(TEMPLATES))}")
    return TEMPLATES[key]
