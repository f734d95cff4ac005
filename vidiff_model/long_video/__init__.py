"""Long videos: clip planning, the three long-video modes and the seam measure."""

from .modes import MODES, LongVideoOptions
from .planner import WEIGHTINGS, Clip, continuation_instruction, plan_clips, window_weights
from .seams import SeamReport, frame_changes, seam_report

__all__ = ["MODES", "WEIGHTINGS", "Clip", "LongVideoOptions", "SeamReport", "continuation_instruction",
           "frame_changes", "plan_clips", "seam_report", "window_weights"]
