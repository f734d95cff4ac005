"""Instruction encoding: the host's CLIP (and CLIP vision) outputs turned into VIDiff instruction tokens."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from comfy_api.latest import io

from ..vidiff_model.errors import InstructionError
from ..vidiff_model.long_video import continuation_instruction
from .host_guider import check_video_model
from .host_sampling import HostVideoModel

PAYLOAD_KEY = "vidiff_instruction"


@dataclass
class InstructionPayload:
    """Kept in the conditioning so the sampler can encode the null and long-video variants of the same
    instruction with the same encoders."""

    text: str
    clip: object  # host CLIP
    image_embeds: torch.Tensor | None


def encode_text(clip, text: str, name: str = "instruction") -> torch.Tensor:
    """Host CLIP -> (1, T, D) last hidden states (T = 77 per started 77-token window)."""
    if clip is None:
        raise InstructionError(f"{name}: no CLIP model is connected; load the SD-1.5 CLIP-L text encoder")
    return clip.encode_from_tokens(clip.tokenize(text))


def instruction_tokens(model, payload: InstructionPayload, text: str | None = None) -> torch.Tensor:
    """VIDiff tokens (1, 77 + K, D) for `text` (default: the payload's) with the payload's image."""
    hidden = encode_text(payload.clip, payload.text if text is None else text)
    return model.encode_instruction(hidden, payload.image_embeds)


class VIDiffInstructionEncode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VIDiffInstructionEncode",
            display_name="VIDiff Instruction Encode",
            category="VIDiff/conditioning",
            description="Encodes a written instruction with the host's CLIP (SD-1.5 CLIP-L) and, optionally, a "
                        "pictured instruction (CLIP vision output) through the model's image MLP.",
            inputs=[
                io.Model.Input("model", tooltip="The VIDiff MODEL the instruction is for (its image MLP encodes a "
                                                "pictured instruction)."),
                io.Clip.Input("clip", tooltip="The SD-1.5 CLIP-L text encoder (CLIPLoader, type stable_diffusion)."),
                io.String.Input("instruction", multiline=True, default="Transform the gray video into color",
                                tooltip="What to do to the video, in the paper's phrasing, e.g. 'Remove the applied "
                                        "haze from this video' (at most 75 CLIP tokens)."),
                io.ClipVisionOutput.Input("image_instruction", optional=True,
                                          tooltip="Optional pictured instruction, e.g. a style image through "
                                                  "CLIPVisionEncode (CLIP ViT-L/14). Needs a model with an image MLP."),
            ],
            outputs=[io.Conditioning.Output(display_name="instruction",
                                            tooltip="VIDiff instruction tokens for VIDiffSampler.")],
        )

    @classmethod
    def execute(cls, model, clip, instruction, image_instruction=None) -> io.NodeOutput:
        image = getattr(image_instruction, "image_embeds", None) if image_instruction is not None else None
        if image_instruction is not None and image is None:
            raise InstructionError("image_instruction: this CLIP vision output has no image_embeds; "
                                   "use CLIPVisionEncode with a CLIP ViT-L/14 vision model")
        payload = InstructionPayload(instruction, clip, image)
        check_video_model(model)
        tokens = instruction_tokens(HostVideoModel(model), payload)
        return io.NodeOutput([[tokens.cpu(), {PAYLOAD_KEY: payload}]])


def resolve(model, conditioning, name: str):
    """(tokens, payload or None) from a CONDITIONING made by VIDiffInstructionEncode or plain CLIPTextEncode."""
    if not isinstance(conditioning, list) or not conditioning:
        raise InstructionError(f"{name}: empty conditioning; connect VIDiffInstructionEncode")
    if len(conditioning) > 1:
        raise InstructionError(f"{name}: {len(conditioning)} combined conditionings; VIDiff takes one instruction")
    tensor, extra = conditioning[0][0], conditioning[0][1]
    payload = extra.get(PAYLOAD_KEY)
    if payload is not None:
        return tensor, payload
    return model.encode_instruction(tensor), None  # e.g. CLIPTextEncode: text hidden states only


def instruction_pair(model, instruction, negative) -> tuple[torch.Tensor, torch.Tensor, InstructionPayload | None]:
    """(instruction tokens, ∅_T tokens, payload or None): ∅_T is the negative when one is connected, else the
    empty text through the CLIP that encoded the instruction (VIDiff Instruction Encode keeps it)."""
    tokens, payload = resolve(model, instruction, "instruction")
    if negative is not None:
        null, _ = resolve(model, negative, "negative")
    elif payload is not None:
        null = model.null_instruction(encode_text(payload.clip, ""))
    else:
        raise InstructionError("negative: the instruction is a plain text conditioning, so connect a negative "
                               "(e.g. CLIP Text Encode of an empty text), or use VIDiff Instruction Encode")
    return tokens, null, payload


def continuation_fn(model, payload: InstructionPayload | None):
    """n -> tokens of 'Based on the first n frames, <instruction>' (None without the instruction text)."""
    if payload is None:
        return None
    cache: dict[int, torch.Tensor] = {}

    def tokens(n: int) -> torch.Tensor:
        if n not in cache:
            cache[n] = instruction_tokens(model, payload, continuation_instruction(payload.text, n))
        return cache[n]
    return tokens
