"""ComfyUI adapters (V3 schema). Each node's `execute` translates host objects into one call of the
`vidiff_model` library and back; the algorithms live in the library."""

from comfy_api.latest import ComfyExtension, io

NODES: list[type[io.ComfyNode]] = []  # the VIDiff nodes are added by the nodes issue


class VIDiffExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)


async def comfy_entrypoint() -> VIDiffExtension:
    return VIDiffExtension()
