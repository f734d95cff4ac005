"""Dual classifier-free guidance: the formula, branch skipping, batching, latent scales."""

import pytest
import torch
from analytic_models import IdealDenoiser, LinearModel, instruction_with_shift

from vidiff_model import DiffusersSampler, GuidanceConfig, VIDiffError, translate_video
from vidiff_model.guidance import guided_eps_fn


def _literal(model, x, src, t, c, null, s_v, s_t):
    """The paper's formula, written out branch by branch."""
    e_nn = model(x, torch.zeros_like(src), t, null)
    e_vn = model(x, src, t, null)
    e_vc = model(x, src, t, c)
    return e_nn + s_v * (e_vn - e_nn) + s_t * (e_vc - e_vn)


SCALES = [(1.5, 7.5), (1.0, 7.5), (1.0, 1.0), (2.0, 2.0), (0.0, 0.0), (1.2, 0.0), (3.0, 1.0)]


@pytest.mark.parametrize("s_v, s_t", SCALES)
@pytest.mark.parametrize("batched", [True, False])
def test_guidance_is_the_instructpix2pix_formula(s_v, s_t, batched):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 3, 4, 4, generator=g, dtype=torch.float64)
    src = torch.randn(2, 4, 3, 4, 4, generator=g, dtype=torch.float64)
    c = torch.randn(2, 77, 768, generator=g, dtype=torch.float64)
    null = torch.randn(1, 77, 768, generator=g, dtype=torch.float64)
    model = LinearModel()
    got = guided_eps_fn(model, c, null, src, GuidanceConfig(s_v, s_t, batched))(x, torch.tensor(500.0), 1.0)
    want = _literal(LinearModel(), x, src, torch.tensor(500.0), c, null.expand(2, -1, -1), s_v, s_t)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("s_v, s_t, branches", [(1.5, 7.5, 3), (1.0, 7.5, 2), (1.5, 1.5, 2), (1.0, 1.0, 1),
                                                 (1.5, 0.0, 2), (1.0, 0.0, 1)])
def test_scales_of_one_skip_branches(s_v, s_t, branches):
    x = torch.zeros(1, 4, 2, 4, 4, dtype=torch.float64)
    batched, sequential = LinearModel(), LinearModel()
    guided_eps_fn(batched, instruction_with_shift([1, 2, 3, 4]), instruction_with_shift([0] * 4), x,
                  GuidanceConfig(s_v, s_t, batched=True))(x, torch.tensor(10.0), 1.0)
    guided_eps_fn(sequential, instruction_with_shift([1, 2, 3, 4]), instruction_with_shift([0] * 4), x,
                  GuidanceConfig(s_v, s_t, batched=False))(x, torch.tensor(10.0), 1.0)
    assert [c["batch"] for c in batched.calls] == [branches]  # one forward, the branches on the batch axis
    assert [c["batch"] for c in sequential.calls] == [1] * branches


def test_bad_scales_are_named():
    with pytest.raises(VIDiffError, match="text_cfg: -1"):
        GuidanceConfig(1.5, -1)
    with pytest.raises(VIDiffError, match="video_cfg: 1000"):
        GuidanceConfig(1000, 7.5)


@pytest.mark.parametrize("s_v, s_t", [(1.5, 7.5), (1.0, 1.0), (2.5, 4.0)])
def test_latent_scales_end_to_end(s_v, s_t):
    """With an ideal denoiser the sample is exactly the guided target, in the host's raw VAE scale:
    raw result = (1 − s_V)·0 + (s_V − s_T)·src + s_T·(src + shift) = s_V·src + s_T·shift.
    This holds only if the source enters unscaled, sampling runs ×0.18215 and the result is unscaled."""
    g = torch.Generator().manual_seed(1)
    src = torch.randn(1, 4, 5, 4, 4, generator=g, dtype=torch.float64) * 5  # raw VAE latents are ~5x scaled ones
    shift = [0.5, -1.0, 2.0, 0.25]
    model = IdealDenoiser()
    result = translate_video(model, src, instruction_with_shift(shift), instruction_with_shift([0] * 4), seed=3,
                             sampler=DiffusersSampler("euler", "normal", 8), guidance=GuidanceConfig(s_v, s_t))
    want = s_v * src + s_t * torch.tensor(shift, dtype=torch.float64).view(1, 4, 1, 1, 1)
    torch.testing.assert_close(result.latent.double(), want, rtol=1e-4, atol=1e-4)
    first = model.calls[0]["source"]  # branches on the batch axis: (∅_V, V, V) minus the skipped ones
    torch.testing.assert_close(first[-1:], src, rtol=1e-6, atol=1e-6)  # the source enters unscaled (float32 on the way)
    assert (not first[0].any()) == (s_v != 1.0)  # the no-video branch (zeros) runs unless s_V = 1


def test_batched_and_sequential_agree_on_the_tiny_model(tiny_text_model):
    g = torch.Generator().manual_seed(2)
    src = torch.randn(1, 4, 4, 8, 8, generator=g)
    ins = tiny_text_model.encode_instruction(torch.randn(1, 77, 768, generator=g))
    null = tiny_text_model.null_instruction(torch.zeros(1, 77, 768))
    out = {}
    for batched in (True, False):
        out[batched] = translate_video(tiny_text_model, src, ins, null, seed=5, sampler=DiffusersSampler("euler", "normal", 3),
                                       guidance=GuidanceConfig(1.5, 7.5, batched)).latent
    # float32 rounding differs between batch sizes, and guidance x7.5 over 3 steps amplifies it
    torch.testing.assert_close(out[True], out[False], rtol=2e-3, atol=2e-3 * float(out[False].abs().max()))
    x = torch.randn(1, 4, 4, 8, 8, generator=g)
    eps = [guided_eps_fn(tiny_text_model, ins, null, src, GuidanceConfig(1.5, 7.5, b))(x, torch.tensor(700.0), 3.0)
           for b in (True, False)]
    torch.testing.assert_close(eps[0], eps[1], rtol=1e-5, atol=1e-5)
