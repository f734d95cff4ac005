"""Shared fixtures. Weights are generated here, never downloaded."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from vidiff_model import VIDiffModel, tiny_config  # noqa: E402


@pytest.fixture
def tiny_model() -> VIDiffModel:
    torch.manual_seed(0)
    return VIDiffModel(tiny_config()).eval()


@pytest.fixture
def tiny_text_model() -> VIDiffModel:
    """Tiny, text-only (no image MLP)."""
    torch.manual_seed(0)
    return VIDiffModel(tiny_config(image_instruction=False)).eval()


def randomize_temporal_outputs(model: VIDiffModel, seed: int = 1) -> None:
    """Fresh temporal layers are the identity (zeroed proj_out); give them weights so frames interact."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.unet.named_parameters():
            if "motion_modules" in name and "proj_out" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def random_tensors(shapes: dict[str, tuple], dtype=torch.float32, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: (torch.randn(s, generator=g) * 0.02).to(dtype) for k, s in shapes.items()}


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One real ComfyUI server for the integration and browser tests (see comfy_harness)."""
    from comfy_harness import start_test_server

    srv = start_test_server(tmp_path_factory.mktemp("comfyui"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def peer_server(server, tmp_path_factory):
    """A second real ComfyUI with the packs users run beside this one (IPAdapter_plus, AnimateDiff-Evolved,
    VideoHelperSuite), on the first server's fixture weights; skipped where ../shared/peers is absent
    (tests/peer_packs.py)."""
    from peer_packs import require_peers, start_peer_server

    require_peers("ipadapter", "animatediff", "videohelpersuite")
    srv = start_peer_server(tmp_path_factory.mktemp("comfyui_peers"), server.workdir / "models", "ipadapter",
                            "animatediff", "videohelpersuite")
    yield srv
    srv.stop()
