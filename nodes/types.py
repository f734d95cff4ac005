"""Custom socket types of the pack."""

from comfy_api.latest import io

LongVideoType = io.Custom("VIDIFF_LONG_VIDEO")
DTYPE_CHOICES = ["auto", "fp16", "bf16", "fp32"]
