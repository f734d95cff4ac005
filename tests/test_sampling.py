"""Samplers and schedules, determinism, the per-step callback and cancellation."""

import pytest
import torch
from analytic_models import IdealDenoiser, instruction_with_shift

from vidiff_model import SAMPLERS, SCHEDULES, DiffusersSampler, GuidanceConfig, VIDiffError, translate_video
from vidiff_model.sampling import make_noise, sd15_alphas_cumprod, sigma_at

ALL = [(s, k) for s in SAMPLERS for k in SCHEDULES]


@pytest.mark.parametrize("sampler_name, schedule", ALL)
def test_every_sampler_reaches_the_target_of_an_ideal_denoiser(sampler_name, schedule):
    src = make_noise((1, 4, 3, 4, 4), seed=0).double() * 4
    result = translate_video(IdealDenoiser(), src, instruction_with_shift([1, 0, 0, 0]), instruction_with_shift([0] * 4),
                             seed=1, sampler=DiffusersSampler(sampler_name, schedule, 10), guidance=GuidanceConfig(1.0, 1.0))
    want = src + torch.tensor([1.0, 0, 0, 0], dtype=torch.float64).view(1, 4, 1, 1, 1)
    torch.testing.assert_close(result.latent.double(), want, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("sampler_name, schedule", ALL)
def test_tiny_model_is_deterministic_per_seed(tiny_text_model, sampler_name, schedule):
    g = torch.Generator().manual_seed(0)
    src = torch.randn(1, 4, 3, 8, 8, generator=g)
    ins = tiny_text_model.encode_instruction(torch.randn(1, 77, 768, generator=g))
    null = tiny_text_model.null_instruction(torch.zeros(1, 77, 768))
    run = lambda seed: translate_video(tiny_text_model, src, ins, null, seed=seed,  # noqa: E731
                                       sampler=DiffusersSampler(sampler_name, schedule, 3)).latent
    a, b, c = run(7), run(7), run(8)
    assert a.shape == src.shape and torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_schedules_differ_and_karras_is_used():
    normal = DiffusersSampler("euler", "normal", 10).make_scheduler()
    karras = DiffusersSampler("euler", "karras", 10).make_scheduler()
    assert not torch.allclose(normal.sigmas, karras.sigmas)
    ancestral = DiffusersSampler("euler_ancestral", "karras", 10).make_scheduler()
    torch.testing.assert_close(ancestral.sigmas, karras.sigmas)
    # trailing spacing: the first step is the pure-noise end of the schedule
    assert float(normal.timesteps[0]) == 999.0
    assert sigma_at(999) == pytest.approx(float(((1 - sd15_alphas_cumprod()[999]) / sd15_alphas_cumprod()[999]) ** 0.5))


def test_callback_every_step_and_cancel_within_a_step():
    model = IdealDenoiser()
    src = torch.zeros(1, 4, 2, 4, 4, dtype=torch.float64)
    seen = []
    translate_video(model, src, instruction_with_shift([1, 0, 0, 0]), instruction_with_shift([0] * 4),
                    sampler=DiffusersSampler("euler", "normal", 6), callback=seen.append)
    assert [s.step for s in seen] == [1, 2, 3, 4, 5, 6] and seen[-1].fraction == 1.0
    assert seen[-1].denoised.shape == src.shape

    class Stop(Exception):
        pass

    def stop_at_3(info):
        if info.step == 3:
            raise Stop
    model.calls.clear()
    with pytest.raises(Stop):
        translate_video(model, src, instruction_with_shift([1, 0, 0, 0]), instruction_with_shift([0] * 4),
                        sampler=DiffusersSampler("euler", "normal", 6), callback=stop_at_3)
    assert len(model.calls) == 3
    calls = []

    def interrupt():
        calls.append(1)
        if len(calls) == 2:
            raise Stop
    model.calls.clear()
    with pytest.raises(Stop):
        translate_video(model, src, instruction_with_shift([1, 0, 0, 0]), instruction_with_shift([0] * 4),
                        sampler=DiffusersSampler("euler", "normal", 6), interrupt=interrupt)
    assert len(model.calls) == 1  # stopped before the second model evaluation


@pytest.mark.parametrize("kwargs, message", [({"sampler_name": "heun"}, "sampler_name: unknown sampler 'heun'"),
                                             ({"scheduler": "exponential"}, "scheduler: unknown schedule"),
                                             ({"steps": 0}, "steps: 0 is out of range")])
def test_bad_sampler_settings_are_named(kwargs, message):
    with pytest.raises(VIDiffError, match=message):
        DiffusersSampler(**kwargs)


def test_bad_source_is_named(tiny_text_model):
    null = tiny_text_model.null_instruction(torch.zeros(1, 77, 768))
    with pytest.raises(VIDiffError, match="source: expected a video latent"):
        translate_video(tiny_text_model, torch.zeros(1, 4, 0, 8, 8), null, null)
    with pytest.raises(VIDiffError, match="source: a 16-channel latent; VIDiff works on SD-1.5 latents"):
        translate_video(tiny_text_model, torch.zeros(1, 16, 2, 8, 8), null, null)
    with pytest.raises(VIDiffError, match="40 frames is more than one clip"):
        translate_video(tiny_text_model, torch.zeros(1, 4, 40, 8, 8), null, null)
