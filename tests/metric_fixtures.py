"""Random backbones of the learned metrics, in torchvision's file layouts (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import torch


def save_alexnet(path: Path, seed: int = 0) -> torch.nn.Module:
    from torchvision.models import alexnet

    torch.manual_seed(seed)
    net = alexnet(weights=None)
    torch.save(net.state_dict(), path)
    return net


def lpips_heads_file() -> Path:
    """The real LPIPS v0.1 AlexNet heads, as the `lpips` package ships them."""
    import lpips

    return Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"


def save_inception(path: Path, seed: int = 0) -> None:
    """Random Inception-v3 with batch-norm statistics from one pass over noise: left at 0/1, every pool
    feature would be ~1e-8 and FID tests would prove nothing."""
    from torchvision.models import inception_v3

    torch.manual_seed(seed)
    net = inception_v3(weights=None, aux_logits=True, init_weights=False)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    with torch.no_grad():
        net.train()(torch.randn(8, 3, 299, 299))
    torch.save(net.state_dict(), path)
