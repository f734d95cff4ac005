"""Custom socket types of the pack."""

from comfy_api.latest import io

LongVideoType = io.Custom("VIDIFF_LONG_VIDEO")
ContinuationType = io.Custom("VIDIFF_CONTINUATION")
MetaBatchType = io.Custom("VHS_BatchManager")  # VideoHelperSuite's Meta Batch Manager (its own type name)
DTYPE_CHOICES = ["auto", "fp16", "bf16", "fp32"]
