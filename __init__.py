"""VIDiff for ComfyUI: video editing and restoration from a written or pictured instruction."""

from .nodes import comfy_entrypoint

WEB_DIRECTORY = "./web"

__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
