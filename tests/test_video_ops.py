"""Pixel-space task helpers (vidiff_model.video_ops): detail transfer and luminance keeping."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidiff_model.errors import VIDiffError
from vidiff_model.video_ops import keep_luminance, transfer_detail


def _blur(x: torch.Tensor) -> torch.Tensor:
    """A stand-in autoencoder round trip: 4× box down and bilinear up, (F, H, W, 3)."""
    y = F.avg_pool2d(x.permute(0, 3, 1, 2), 4)
    return F.interpolate(y, scale_factor=4, mode="bilinear", align_corners=False).permute(0, 2, 3, 1)


@pytest.fixture
def clip() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(3, 32, 32, 3, generator=g) * 0.8 + 0.1  # (F, H, W, 3), away from the clamp


def test_an_unchanged_result_gives_back_the_source(clip):
    # a model that changed nothing decodes to the round trip; the transfer must then restore the source exactly
    assert torch.allclose(transfer_detail(clip, _blur(clip), _blur(clip)), clip, atol=1e-6)


def test_the_models_change_survives_and_the_detail_is_the_sources(clip):
    tint = torch.tensor([0.05, -0.05, 0.02])
    out = transfer_detail(clip, _blur(clip) + tint, _blur(clip))
    assert torch.allclose(out - clip, tint.expand_as(clip), atol=1e-6)
    assert torch.allclose(transfer_detail(clip, _blur(clip) + tint, _blur(clip), strength=0.0), _blur(clip) + tint)


def test_no_detail_is_taken_inside_the_grown_mask(clip):
    holes = clip.clone()
    holes[:, 8:16, 8:16] = 0  # a black hole, as VIDiffCutHoles makes
    mask = torch.zeros(32, 32)
    mask[8:16, 8:16] = 1
    filled = torch.full_like(clip, 0.5)  # the model's fill
    out = transfer_detail(holes, filled, _blur(holes), mask, mask_grow=2)
    assert torch.equal(out[:, 6:18, 6:18], filled[:, 6:18, 6:18])  # the hole and 2 px around it: the model's
    outside = torch.ones(32, 32, dtype=torch.bool)
    outside[6:18, 6:18] = False
    expected = (filled + holes - _blur(holes)).clamp(0, 1)
    assert torch.allclose(out[:, outside], expected[:, outside])
    # without the mask the hole's sharp edge would come back
    assert not torch.allclose(transfer_detail(holes, filled, _blur(holes))[:, 6:18, 6:18], filled[:, 6:18, 6:18])


def test_per_frame_masks_are_used_per_frame(clip):
    mask = torch.zeros(3, 32, 32)
    mask[1] = 1  # only the middle frame is a hole
    out = transfer_detail(clip, _blur(clip), _blur(clip), mask, mask_grow=0)
    assert torch.allclose(out[[0, 2]], clip[[0, 2]], atol=1e-6) and torch.equal(out[1], _blur(clip)[1].clamp(0, 1))


@pytest.mark.parametrize("change, message", [
    (dict(result=torch.zeros(2, 32, 32, 3)), "result: (2, 32, 32, 3) frames do not match source"),
    (dict(source_round_trip=torch.zeros(3, 16, 16, 3)), "source_round_trip: (3, 16, 16, 3)"),
    (dict(source=torch.zeros(3, 32, 32)), "source: expected video frames"),
    (dict(mask=torch.zeros(2, 32, 32)), "mask: a mask of shape (2, 32, 32) does not fit 3 frames"),
    (dict(strength=3.0), "strength: 3.0 is outside 0–2"),
    (dict(mask_grow=-1), "mask_grow: -1"),
])
def test_bad_inputs_are_named(clip, change, message):
    args = dict(source=clip, result=clip, source_round_trip=clip, mask=None, strength=1.0, mask_grow=4)
    with pytest.raises(VIDiffError, match=None) as e:
        transfer_detail(**{**args, **change})
    assert message in str(e.value)


def test_keep_luminance_puts_the_results_colour_on_the_sources_brightness(clip):
    from vidiff_model.training.synthetic import grayscale

    gray = grayscale(clip)
    colour = clip * 0.5 + 0.25  # a result with the right hue, the wrong brightness and contrast
    out = keep_luminance(gray, colour)
    assert torch.allclose(grayscale(out), gray, atol=1e-6)  # its luma is the source's
    assert torch.allclose(out[..., 0] - out[..., 1], colour[..., 0] - colour[..., 1], atol=1e-6)  # colour kept
    assert torch.allclose(keep_luminance(gray, clip), clip, atol=1e-6)  # the right colours give the clip back
    with pytest.raises(VIDiffError, match=r"result: \(2, 32, 32, 3\) frames do not match source"):
        keep_luminance(gray, clip[:2])
