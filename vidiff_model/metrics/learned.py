"""Metrics that need a learned backbone. They run only on weights the user points to (a local
folder); without them the metric is reported as unavailable, never downloaded.

- CLIP text–video alignment: mean over frames of 100 · cos(CLIP image embedding, CLIP text embedding).
- CLIP frame consistency: mean over consecutive frames of 100 · cos(embedding_t, embedding_t+1).
Both take a transformers CLIPModel folder (e.g. openai/clip-vit-large-patch14 saved locally).
- LPIPS (v0.1, AlexNet): torchvision's AlexNet weights (a local `alexnet-owt-7be5be79.pth`) and the
  LPIPS linear heads (a local `alex.pth`, e.g. from the `lpips` package's weights/v0.1 folder); mean
  over frames of the per-frame distance (lower is better).
- FID between the prediction's frames and the reference's frames: pool features (2048) of
  torchvision's Inception-v3 (a local `inception_v3_google-0cc3c7bd.pth`), Fréchet distance of the two
  Gaussians. Note: torchvision's Inception weights are not the TF-FID ones, so figures are comparable
  among runs of this tool, not with papers that use TF-FID; a handful of frames gives a noisy estimate.
The backbones come from torchvision (present wherever ComfyUI runs); weights load with
`torch.load(weights_only=True)`.
"""

from __future__ import annotations

import os

import torch

from ..clip_encoders import clip_preprocess
from ..errors import CheckpointError

UNAVAILABLE_LPIPS = "unavailable: no local LPIPS weights given (AlexNet + LPIPS heads)"
UNAVAILABLE_FID = "unavailable: no local Inception-v3 weights given"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
LPIPS_SHIFT, LPIPS_SCALE = (-0.030, -0.088, -0.188), (0.458, 0.448, 0.450)
ALEX_SLICES = ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12))  # conv1..conv5 after their ReLU


def _state_dict(path: str | os.PathLike) -> dict:
    from ..checkpoints.io import TensorFile

    tf = TensorFile(path)
    return {k: tf.get(k) for k in tf.keys()}


def _load_into(module: torch.nn.Module, path: str | os.PathLike, what: str) -> None:
    """Strictly load a backbone; a file of another kind is named, not a torch traceback."""
    state = _state_dict(path)
    mine = module.state_dict()
    missing = [k for k in mine if k not in state]
    wrong = [k for k in mine if k in state and tuple(state[k].shape) != tuple(mine[k].shape)]
    if missing or wrong:
        example = (missing or wrong)[0]
        raise CheckpointError(path, f"not {what}: {len(missing)} tensors missing and {len(wrong)} of another shape "
                                    f"(e.g. {example})")
    module.load_state_dict({k: state[k] for k in mine})


class LPIPSScorer:
    """LPIPS v0.1 with an AlexNet backbone, from local weights."""

    def __init__(self, alexnet_path: str | os.PathLike, heads_path: str | os.PathLike):
        from torchvision.models import alexnet

        net = alexnet(weights=None)
        _load_into(net, alexnet_path, "torchvision AlexNet weights")
        self.slices = [net.features[a:b].eval() for a, b in ALEX_SLICES]
        heads = _state_dict(heads_path)
        names = [f"lin{i}.model.1.weight" for i in range(len(ALEX_SLICES))]
        if not all(n in heads for n in names):
            raise CheckpointError(heads_path, "not LPIPS v0.1 AlexNet heads (alex.pth): no lin0..lin4 weights")
        self.heads = [heads[n].float() for n in names]  # (1, C, 1, 1)

    @torch.no_grad()
    def per_frame(self, pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """(F,) distances of (F, H, W, 3) frames in [0, 1]."""
        shift = torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1)
        scale = torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1)
        x, y = ((v.permute(0, 3, 1, 2).float() * 2 - 1 - shift) / scale for v in (pred, ref))
        total = torch.zeros(x.shape[0])
        for layer, head in zip(self.slices, self.heads):
            x, y = layer(x), layer(y)
            nx = x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            ny = y / (y.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total += torch.nn.functional.conv2d((nx - ny) ** 2, head).mean(dim=(1, 2, 3))
        return total


class FIDScorer:
    """Fréchet distance between two sets of frames in torchvision Inception-v3 pool features."""

    def __init__(self, inception_path: str | os.PathLike):
        from torchvision.models import inception_v3

        self.net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        _load_into(self.net, inception_path, "torchvision Inception-v3 weights")
        self.net.fc = torch.nn.Identity()
        self.net.eval()

    @torch.no_grad()
    def features(self, frames: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.interpolate(frames.permute(0, 3, 1, 2).float(), size=(299, 299), mode="bilinear",
                                            align_corners=False)
        x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return self.net(x).double()  # (F, 2048)

    def distance(self, pred: torch.Tensor, ref: torch.Tensor) -> float:
        return frechet_distance(self.features(pred), self.features(ref))


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """|μa − μb|² + Tr Σa + Tr Σb − 2 Tr (Σa Σb)^½ of two feature sets (N, D).

    With Σa = A Aᵀ and Σb = B Bᵀ (A, B the centred features / √(N−1), D × N), the nonzero eigenvalues of
    Σa Σb are those of (AᵀB)(AᵀB)ᵀ, so Tr (Σa Σb)^½ is the sum of singular values of AᵀB. That is exact
    and stable when there are fewer frames than features, where scipy's sqrtm of a singular D × D matrix
    is not (it gives FID(x, x) = −0.03 on five frames); with more frames than features, sqrtm is used.
    """
    import numpy as np
    from scipy import linalg

    fa, fb = a.double().numpy(), b.double().numpy()
    assert fa.shape[1] == fb.shape[1], f"feature widths differ: {fa.shape[1]} vs {fb.shape[1]}"
    assert min(len(fa), len(fb)) >= 2, "FID needs at least 2 frames on each side"
    mu_a, mu_b = fa.mean(0), fb.mean(0)
    A = (fa - mu_a).T / np.sqrt(len(fa) - 1)  # (D, Na)
    B = (fb - mu_b).T / np.sqrt(len(fb) - 1)  # (D, Nb)
    if max(len(fa), len(fb)) <= fa.shape[1]:
        cross = np.linalg.svd(A.T @ B, compute_uv=False).sum()
    else:
        cross = np.trace(np.real(linalg.sqrtm((A @ A.T) @ (B @ B.T))))
    return float(((mu_a - mu_b) ** 2).sum() + (A * A).sum() + (B * B).sum() - 2 * cross)


class CLIPScorer:
    """CLIP text–video alignment and frame consistency from a local CLIPModel folder."""

    def __init__(self, path: str | os.PathLike):
        from transformers import CLIPModel, CLIPTokenizer

        self.model = CLIPModel.from_pretrained(str(path), local_files_only=True).eval()
        self.tokenizer = CLIPTokenizer.from_pretrained(str(path), local_files_only=True)

    @torch.no_grad()
    def image_embeddings(self, frames: torch.Tensor) -> torch.Tensor:
        pixels = clip_preprocess(frames, self.model.config.vision_config.image_size)
        emb = self.model.get_image_features(pixel_values=pixels)
        return torch.nn.functional.normalize(getattr(emb, "pooler_output", emb), dim=-1)

    @torch.no_grad()
    def text_embedding(self, text: str) -> torch.Tensor:
        ids = self.tokenizer([text], padding=True, truncation=True, return_tensors="pt")
        emb = self.model.get_text_features(**ids)
        return torch.nn.functional.normalize(getattr(emb, "pooler_output", emb), dim=-1)

    def scores(self, frames: torch.Tensor, text: str | None) -> dict[str, float]:
        image = self.image_embeddings(frames)  # (F, D)
        out = {"clip_frame_consistency": float(100 * (image[:-1] * image[1:]).sum(-1).mean())
               if len(image) > 1 else float("nan")}
        if text:
            out["clip_text_alignment"] = float(100 * (image @ self.text_embedding(text).T).mean())
        return out
