"""ComfyUI adapters (V3 schema). Each node's `execute` translates host objects into one call of the
`vidiff_model` library and back; the algorithms live in the library."""

from comfy_api.latest import ComfyExtension, io

from .host import register_model_folders
from .mini_files import register_pack_files
from .routes import register_routes

register_model_folders()  # before the loaders list their files
register_pack_files()  # the pack's own models/ folders (vidiff-mini) after the user's; the mini text encoder
register_routes()

from .instruction import VIDiffInstructionEncode  # noqa: E402
from .loaders import VIDiffModelFromParts, VIDiffModelLoader  # noqa: E402
from .mini_files import VIDiffDegradeVideo, VIDiffLoadSampleClip, VIDiffLoadVideo  # noqa: E402
from .motion import VIDiffApplyMotionModule, VIDiffGuider, VIDiffNoiseNode  # noqa: E402
from .sampler import VIDiffContinueFrom, VIDiffLongVideo, VIDiffSampler  # noqa: E402
from .video_tasks import (  # noqa: E402
    VIDiffCutHoles, VIDiffDetailTransfer, VIDiffKeepLuminance, VIDiffMaskFromSegmentation, VIDiffVideoMetrics,
)

NODES: list[type[io.ComfyNode]] = [
    VIDiffModelLoader, VIDiffModelFromParts, VIDiffInstructionEncode, VIDiffSampler, VIDiffLongVideo,
    VIDiffCutHoles, VIDiffMaskFromSegmentation, VIDiffVideoMetrics, VIDiffLoadSampleClip, VIDiffDegradeVideo,
    VIDiffDetailTransfer, VIDiffKeepLuminance, VIDiffApplyMotionModule, VIDiffGuider, VIDiffNoiseNode,
    VIDiffLoadVideo, VIDiffContinueFrom,
]


class VIDiffExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)


async def comfy_entrypoint() -> VIDiffExtension:
    return VIDiffExtension()
