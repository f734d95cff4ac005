"""The custom node packs ComfyUI users run beside this one (ComfyUI_IPAdapter_plus, ComfyUI-AnimateDiff-Evolved,
ComfyUI-VideoHelperSuite), loaded unmodified into a real test server, and fixture weights in their released file
layouts.

The packs come as source snapshots in `../shared/peers/` (see its README); where that folder is absent (a user's
own clone) the tests that need them skip with a reason. Each is unpacked once into `.comfyui/peers/` and linked
into a custom_nodes folder of the test server's own, so the provisioned ComfyUI tree (and every other test
server) stays without them.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT.parent / "shared" / "peers"
UNPACKED = ROOT / ".comfyui" / "peers"
PACKS = {  # short name -> snapshot (folder name = file name without .tar.gz)
    "ipadapter": "ComfyUI_IPAdapter_plus-9d076a3",
    "animatediff": "ComfyUI-AnimateDiff-Evolved-d8d163c",
    "videohelpersuite": "ComfyUI-VideoHelperSuite-4ee72c0",
}

# SD-1.5's 16 cross-attention layers in IP-Adapter's key order (`ip_adapter.{1,3,…,31}`: diffusers' attention
# processors, down → up → mid), which is IPAdapter_plus's patch order too: input blocks 1, 2, 4, 5, 7, 8, output
# blocks 3 … 11, the middle block. Their widths:
SD15_CROSS_ATTENTION_WIDTHS = (320, 320, 640, 640, 1280, 1280, 1280, 1280, 1280, 640, 640, 640, 320, 320, 320, 1280)


def require_peers(*names: str) -> None:
    """Skips the calling test, with the reason, where a pack's snapshot is absent (a user's own clone)."""
    for name in names:
        if not (PEERS / f"{PACKS[name]}.tar.gz").is_file():
            pytest.skip(f"peer pack {PACKS[name]} not found: these tests need ../shared/peers/ (tests/peer_packs.py)")


def peer_pack(name: str) -> Path:
    """The unpacked pack `name` (a key of PACKS)."""
    folder = PACKS[name]
    archive = PEERS / f"{folder}.tar.gz"
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: the peer pack snapshots are in ../shared/peers/ (see its README)")
    out = UNPACKED / folder
    if not (out / "__init__.py").is_file():
        UNPACKED.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(UNPACKED, filter="data")
        assert (out / "__init__.py").is_file(), f"{archive} did not unpack to {out}"
    return out


def custom_nodes_with(work: Path, *names: str) -> Path:
    """A custom_nodes folder under `work` linking the packs `names`."""
    folder = work / "custom_nodes"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        link = folder / PACKS[name]
        if not link.exists():
            link.symlink_to(peer_pack(name), target_is_directory=True)
    return folder


def ip_adapter_sd15_shapes(image_embed_dim: int = 1024, context_dim: int = 768, tokens: int = 4) -> dict:
    """Keys and shapes of `ip-adapter_sd15.safetensors` (h94/IP-Adapter): the image projection (image embed ->
    `tokens` × context_dim) and a to_k_ip / to_v_ip pair per cross-attention layer. The released file pairs with
    CLIP ViT-H (image embeds 1024 wide); `image_embed_dim` follows the image encoder the test gives it."""
    shapes = {"image_proj.proj.weight": (tokens * context_dim, image_embed_dim),
              "image_proj.proj.bias": (tokens * context_dim,),
              "image_proj.norm.weight": (context_dim,), "image_proj.norm.bias": (context_dim,)}
    for i, width in enumerate(SD15_CROSS_ATTENTION_WIDTHS):
        for kv in ("k", "v"):
            shapes[f"ip_adapter.{2 * i + 1}.to_{kv}_ip.weight"] = (width, context_dim)
    return shapes


def ip_adapter_sd15_tensors(image_embed_dim: int = 1024, seed: int = 0, std: float = 0.05) -> dict[str, torch.Tensor]:
    """Random fp16 tensors in `ip_adapter_sd15_shapes`' layout (norm weights around 1)."""
    import fixture_files as ff

    return ff.random_tensors(ip_adapter_sd15_shapes(image_embed_dim), seed=seed, std=std, stream="ip_adapter")


def write_peer_model_files(models: Path) -> None:
    """IPAdapter_plus's files under the template's names: an `ip-adapter_sd15` of random weights, and for the image
    encoder the test server's CLIP vision fixture (ViT-L: its 768-wide image embeds size `image_proj.proj`)."""
    import fixture_files as ff
    from comfy_harness import MODEL_FILES, PEER_FILES

    ff.save_tensors(models / "ipadapter" / PEER_FILES["ipadapter"], ip_adapter_sd15_tensors(image_embed_dim=768))
    vision_h = models / "clip_vision" / PEER_FILES["clip_vision_h"]
    if not vision_h.exists():
        vision_h.symlink_to(models / "clip_vision" / MODEL_FILES["clip_vision"])


def start_peer_server(work: Path, models: Path, *packs: str):
    """A second real ComfyUI with this pack and the peer `packs`, reading the model folders `models` (the first
    server's fixture weights, plus the peers' files)."""
    from comfy_harness import ComfyServer, write_input_files

    write_peer_model_files(models)
    write_input_files(work / "input")
    # torch's attention: the host's default on a CPU (sub-quadratic) sizes its chunks by the RAM free at each call,
    # so a result would move by ~1e-4 with what else runs on the machine; comparisons at 1e-5 need fixed sums.
    return ComfyServer(work, models=models, custom_nodes=custom_nodes_with(work, *packs),
                       args=["--use-pytorch-cross-attention"]).start()


def start_vhs_server(work: Path, args: tuple[str, ...] = ()):
    """A real ComfyUI with this pack and VideoHelperSuite only (vidiff-mini's files come with the pack)."""
    from comfy_harness import ComfyServer

    (work / "models").mkdir(exist_ok=True)
    return ComfyServer(work, custom_nodes=custom_nodes_with(work, "videohelpersuite"), args=list(args)).start()


def run_until_idle(server, prompt: dict, timeout: float = 900) -> list[dict]:
    """Queue `prompt` and wait until the queue is empty (VideoHelperSuite re-queues the prompt server-side once per
    meta batch); the history entries of this run, oldest first."""
    import time

    before = set(server.get("/history"))
    code, body = server.post("/prompt", {"prompt": prompt})
    assert code == 200, body
    deadline = time.time() + timeout
    time.sleep(0.5)
    while server.get("/queue")["queue_running"] or server.get("/queue")["queue_pending"]:
        if time.time() > deadline:
            raise TimeoutError(f"the queue was not empty after {timeout} s")
        time.sleep(0.5)
    history = server.get("/history")
    return [history[k] for k in history if k not in before]
