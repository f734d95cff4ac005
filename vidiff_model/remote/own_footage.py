"""Your own footage in a vidiff-mini template: the sample-clip loader swapped for LoadVideo → GetVideoComponents.

The mini templates demonstrate a task on the pack's sample clip: VIDiff Load Sample Clip → (VIDiff Degrade Video)
→ the model → the finishing step → metrics against the clean clip. With `--video`, the client rewrites the graph:
- the sample loader becomes LoadVideo → GetVideoComponents → ImageScale to vidiff-mini's frame size (it was
  trained on 128×128 centre crops; its UNet takes any multiple of 32) → ImageFromBatch, keeping the template's
  frame count (16; 0, the long-video template, keeps every frame);
- the degradation: your video is the input to restore, so haze and blur are not added; grayscale stays (the
  model recolours gray frames; gray footage is unchanged by it) and holes stay (a video carries no hole mask:
  the template cuts its own holes into your footage and fills them);
- the metrics against the clean clip go: your footage has no clean reference;
- the finishing step, the sampler's settings and the save nodes are kept.
"""

from __future__ import annotations

import copy

from .errors import UsageError
from .workflow import Prompt, _is_link, describe

SAMPLE_LOADER = "VIDiffLoadSampleClip"
MINI_SIDE = 128  # vidiff-mini's training frames (128×128 centre crops)
REMOVED_DEGRADATIONS = {"haze", "blur"}  # the footage itself is hazy or blurry: nothing is added


def takes_own_footage(prompt: Prompt) -> bool:
    """True for a workflow that loads the pack's sample clip (a vidiff-mini template)."""
    return any(n["class_type"] == SAMPLE_LOADER for n in prompt.values())


def _relink(prompt: Prompt, old: tuple[str, int], new: list | None) -> list[str]:
    """Points every input linked to output `old` at `new`; the ids of the nodes whose input had no new source."""
    orphans = []
    for node_id, node in prompt.items():
        for name, value in node["inputs"].items():
            if _is_link(value) and (value[0], value[1]) == old:
                if new is None:
                    orphans.append(node_id)
                else:
                    node["inputs"][name] = list(new)
    return orphans


def use_own_video(prompt: Prompt, workflow: str, video_name: str) -> Prompt:
    """A copy of a vidiff-mini template that runs on `video_name` (a file in the server's input folder)."""
    prompt = copy.deepcopy(prompt)
    loaders = [i for i, n in prompt.items() if n["class_type"] == SAMPLE_LOADER]
    if len(loaders) != 1:
        raise UsageError(f"{workflow}: expected one {SAMPLE_LOADER} node to replace with your video, "
                         f"found {len(loaders)}")
    sample = loaders[0]
    frames = int(prompt[sample]["inputs"].get("frames", 0) or 0)
    next_id = max((int(i) for i in prompt if i.isdigit()), default=0) + 1

    def add(class_type: str, title: str, **inputs) -> str:
        nonlocal next_id
        node_id = str(next_id)
        next_id += 1
        prompt[node_id] = {"class_type": class_type, "inputs": inputs, "_meta": {"title": title}}
        return node_id

    video = add("LoadVideo", "Your video", file=video_name)
    parts = add("GetVideoComponents", "GetVideoComponents", video=[video, 0])
    images = add("ImageScale", "Resize for vidiff-mini", image=[parts, 0], upscale_method="area",
                 width=MINI_SIDE, height=MINI_SIDE, crop="center")
    if frames:
        images = add("ImageFromBatch", "First frames (the template's clip length)", image=[images, 0],
                     batch_index=0, length=frames)
    clean = (sample, 0)
    # 1. Metrics against the clean clip: there is none for your footage.
    for node_id in [i for i, n in prompt.items() if n["class_type"] == "VIDiffVideoMetrics"
                    and _is_link(n["inputs"].get("reference")) and tuple(n["inputs"]["reference"]) == clean]:
        del prompt[node_id]
    # 2. The loader's outputs: frames, fps; its frame count has no stand-in.
    _relink(prompt, clean, [images, 0])
    _relink(prompt, (sample, 1), [parts, 2])
    orphans = _relink(prompt, (sample, 2), None)
    if orphans:
        raise UsageError(f"{workflow}: node {describe(prompt, orphans[0])} uses the sample clip's frame count, "
                         "which a video of your own does not give; connect it to a constant first")
    del prompt[sample]
    # 3. Degradations the footage already has are not added again.
    for node_id in [i for i, n in prompt.items() if n["class_type"] == "VIDiffDegradeVideo"
                    and n["inputs"].get("degradation") in REMOVED_DEGRADATIONS]:
        source = prompt[node_id]["inputs"]["images"]
        del prompt[node_id]
        _relink(prompt, (node_id, 0), source)
        orphans = _relink(prompt, (node_id, 1), None)
        if orphans:
            raise UsageError(f"{workflow}: node {describe(prompt, orphans[0])} uses the degradation's mask")
    for node in prompt.values():  # the saved input is now your footage as the model sees it
        if node["_meta"].get("title") == "Save degraded input":
            node["_meta"]["title"] = "Save input (your video, as the model gets it)"
    return prompt
