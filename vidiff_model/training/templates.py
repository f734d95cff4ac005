"""Instruction templates per task: several phrasings each, the paper's first (DESIGN §1.3).

A phrasing is drawn per sample so the model does not learn one sentence; `{object}`, `{color}` and
`{style}` are filled from the sample. The long-video prefix is the one the sampler uses
(`long_video.planner.continuation_instruction`), so training and inference agree word for word.
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


def instruction_for(task: str, rng: random.Random, **fields: str) -> str:
    """A phrasing for `task` with its fields filled in."""
    return rng.choice(TEMPLATES[task]).format(**fields)


def with_first_frames(instruction: str, n: int) -> str:
    """The long-video training instruction: "Based on the first n frames, <instruction>"."""
    return continuation_instruction(instruction, n)
