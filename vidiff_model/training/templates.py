"""Instruction templates per task: several phrasings each, the paper's first (DESIGN §1.3).

A phrasing is drawn per sample so the model does not learn one sentence; `{object}`, `{color}` and
`{style}` are filled from the sample. The long-video prefix is the one the sampler uses
(`long_video.planner.continuation_instruction`), so training and inference agree word for word.

The preset tasks (`instructions(task)`: the restorations and `style:NAME`) are the vidiff-mini model's:
they live here, not in `vidiff_model.mini`, because the `latents` data source trains on them and training
never imports the mini package (a test checks). `mini.styles.STYLES` pairs each style's phrasings with its
filter, and `mini.tasks` re-exports `RESTORATION_TASKS` and `instructions`.
"""

from __future__ import annotations

import random

from ..long_video.planner import continuation_instruction

TEMPLATES: dict[str, tuple[str, ...]] = {
    "recolor": (
        "Convert the grayscale clip into a colorful masterpiece",
        "Colorize this black and white video",
        "Add natural colors to this grayscale video",
        "Turn this monochrome clip into color",
    ),
    "dehaze": (
        "Remove the applied haze from this video",
        "Clear the haze from this video",
        "Make this hazy video clear",
        "Dehaze the video",
    ),
    "deblur": (
        "Enhance the clarity of this blurry video",
        "Remove the motion blur from this video",
        "Make this blurry video sharp",
        "Deblur the video",
    ),
    "inpaint": (
        "Repair the video with missing parts",
        "Fill in the missing regions of this video",
        "Inpaint the holes in this video",
        "Restore the damaged parts of the video",
    ),
    "segmentation": (
        "Mark the pixels of the {object} in {color} and leave the rest unchanged",
        "Change the {object} pixels to {color}, while keeping the other pixels constant",
        "Paint the {object} {color} and keep everything else the same",
        "Highlight the {object} in {color}",
    ),
}


RESTORATION_TASKS = ("recolor", "dehaze", "deblur", "inpaint")  # phrasings without fields (TEMPLATES)

# Text style edits whose target a classical filter defines (mini.styles); the first phrasing is canonical.
STYLE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "sketch": (
        "Turn the video to Sketch Style.",
        "Make this video look like a pencil sketch.",
        "Transform the video into a pencil drawing.",
        "Render the video as a black and white sketch.",
    ),
    "watercolor": (
        "Transform the video to Watercolor Style.",
        "Turn the video into a watercolor painting.",
        "Make this video look like a watercolor painting.",
        "Paint the video in watercolors.",
    ),
    "sepia": (
        "Turn the video to Sepia Style.",
        "Give this video an old sepia photo look.",
        "Make the video look like a sepia-toned photograph.",
        "Apply a sepia tone to the video.",
    ),
    "cartoon": (
        "Turn the video to Cartoon Style.",
        "Make this video look like a cartoon.",
        "Transform the video into a comic drawing with bold outlines.",
        "Render the video as a cartoon.",
    ),
}


def preset_tasks() -> tuple[str, ...]:
    """The tasks `instructions` knows: the restorations, then `style:NAME` per style."""
    return RESTORATION_TASKS + tuple(f"style:{s}" for s in STYLE_TEMPLATES)


def instructions(task: str) -> tuple[str, ...]:
    """The phrasings the mini model is trained on for `task` (its presets): a restoration or `style:NAME`."""
    if task.startswith("style:"):
        name = task.split(":", 1)[1]
        if name not in STYLE_TEMPLATES:
            raise ValueError(f"task {task!r}: unknown style; choose one of {', '.join(STYLE_TEMPLATES)}")
        return STYLE_TEMPLATES[name]
    if task not in RESTORATION_TASKS:
        raise ValueError(f"task {task!r}: choose one of {', '.join(preset_tasks())}")
    return TEMPLATES[task]


def instruction_for(task: str, rng: random.Random, **fields: str) -> str:
    """A phrasing for `task` with its fields filled in."""
    return rng.choice(TEMPLATES[task]).format(**fields)


def with_first_frames(instruction: str, n: int) -> str:
    """The long-video training instruction: "Based on the first n frames, <instruction>"."""
    return continuation_instruction(instruction, n)
