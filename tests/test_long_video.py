"""The long-video planner (property tests), the three modes and the seam measure."""

import math

import pytest
import torch
from analytic_models import IdealDenoiser, LinearModel, instruction_with_shift
from hypothesis import given, settings
from hypothesis import strategies as st

from vidiff_model import DiffusersSampler, GuidanceConfig, LongVideoOptions, VIDiffError, translate_video
from vidiff_model.long_video import Clip, continuation_instruction, plan_clips, seam_report, window_weights
from vidiff_model.sampling import make_noise

MODES = ["autoregressive", "overlap_guided", "sliding_window"]


@settings(max_examples=400, deadline=None)
@given(frames=st.integers(1, 300), clip_length=st.integers(1, 40), data=st.data())
def test_plan_covers_every_frame_once(frames, clip_length, data):
    overlap = data.draw(st.integers(0, clip_length - 1))
    clips = plan_clips(frames, clip_length, overlap)
    assert clips[0].start == 0 and clips[0].overlap == 0 and clips[-1].end == frames
    written = [f for c in clips for f in range(c.new_start, c.end)]
    assert written == list(range(frames))  # every output frame exactly once, in order
    for prev, clip in zip(clips, clips[1:]):
        assert clip.length == clip_length  # only a video shorter than a clip has a short clip
        assert clip.overlap == prev.end - clip.start  # shared frames are the previous clip's last ones
        assert clip.overlap >= overlap  # as asked (more only for the end-aligned last clip)
        assert clip.new_start == prev.end
    assert all(c.overlap == overlap for c in clips[1:-1])
    assert len(clips) == 1 or frames > clip_length


@pytest.mark.parametrize("frames, clip_length, overlap, want", [
    (1, 16, 4, [Clip(0, 1, 0)]),
    (16, 16, 4, [Clip(0, 16, 0)]),
    (17, 16, 4, [Clip(0, 16, 0), Clip(1, 17, 15)]),
    (32, 16, 0, [Clip(0, 16, 0), Clip(16, 32, 0)]),
    (20, 16, 0, [Clip(0, 16, 0), Clip(4, 20, 12)]),
    (40, 16, 4, [Clip(0, 16, 0), Clip(12, 28, 4), Clip(24, 40, 4)]),
])
def test_plan_edge_cases(frames, clip_length, overlap, want):
    assert plan_clips(frames, clip_length, overlap) == want


@pytest.mark.parametrize("clip_length, overlap, message", [(16, 16, "overlap: 16 frames is not less than clip_length"),
                                                           (16, 20, "at most 15"), (0, 0, "clip_length: 0"),
                                                           (8, -1, "overlap: -1")])
def test_bad_clip_settings_are_named(clip_length, overlap, message):
    with pytest.raises(VIDiffError, match=message):
        plan_clips(100, clip_length, overlap)
    with pytest.raises(VIDiffError, match=message):
        LongVideoOptions(clip_length, overlap)
    with pytest.raises(VIDiffError, match="mode: unknown long-video mode 'chunked'"):
        LongVideoOptions(mode="chunked")
    with pytest.raises(VIDiffError, match="frames: the video has 0 frames"):
        plan_clips(0, 16, 4)


def test_weightings_and_continuation_text():
    assert window_weights(5, "flat") == [1.0] * 5
    assert window_weights(6, "pyramid") == [1, 2, 3, 3, 2, 1]
    with pytest.raises(VIDiffError, match="weighting: unknown 'gauss'"):
        window_weights(4, "gauss")
    assert continuation_instruction("Transform the gray video into color", 4) == \
        "Based on the first 4 frames, transform the gray video into color"
    assert continuation_instruction("CLIP-style edit", 2) == "Based on the first 2 frames, CLIP-style edit"


def _run(model, source, mode, sampler="euler", steps=6, clip_length=8, overlap=3, **kwargs):
    ins, null = instruction_with_shift([1.0, -0.5, 0.25, 0.0]), instruction_with_shift([0.0] * 4)
    return translate_video(model, source, ins, null, seed=11, sampler=DiffusersSampler(sampler, "normal", steps),
                           guidance=kwargs.pop("guidance", GuidanceConfig(1.0, 1.0)),
                           long_video=LongVideoOptions(clip_length, overlap, mode),
                           continuation=kwargs.pop("continuation", lambda n: ins), **kwargs)


@pytest.mark.parametrize("mode", MODES)
def test_modes_match_the_target_of_an_ideal_denoiser(mode):
    """Each clip's ideal target is the same function of the source, so every mode must return it."""
    source = make_noise((1, 4, 21, 4, 4), seed=0).double() * 3
    result = _run(IdealDenoiser(), source, mode)
    want = source + torch.tensor([1.0, -0.5, 0.25, 0.0], dtype=torch.float64).view(1, 4, 1, 1, 1)
    if mode == "autoregressive":
        # shared source frames are the previous results: the ideal model adds the shift to them again
        assert [c.overlap for c in result.clips] == [0, 3, 3, 5]
        torch.testing.assert_close(result.latent[:, :, :8].double(), want[:, :, :8], rtol=1e-3, atol=1e-3)
    else:
        torch.testing.assert_close(result.latent.double(), want, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("sampler", ["euler", "ddim", "dpmpp_2m", "uni_pc", "euler_ancestral"])
def test_overlap_guided_reproduces_the_previous_clips_frames(sampler):
    """With a model whose look changes from clip to clip, each clip's shared frames still come out as
    the previous clip's results: they were held there during sampling."""
    source = make_noise((1, 4, 20, 4, 4), seed=1).double()
    result = _run(IdealDenoiser(clip_offset=True), source, "overlap_guided", sampler=sampler, steps=10)
    for prev, clip, res, prev_res in zip(result.clips, result.clips[1:], result.clip_results[1:], result.clip_results):
        held = prev_res[:, :, clip.start - prev.start:]
        torch.testing.assert_close(res[:, :, :clip.overlap], held, rtol=1e-3, atol=1e-3)
    # and the output's shared frames are the previous clip's, bit for bit
    c1 = result.clips[1]
    assert torch.equal(result.latent[:, :, c1.start:c1.new_start], result.clip_results[0][:, :, c1.start:])


def test_autoregressive_asks_for_the_actual_number_of_shared_frames():
    model = IdealDenoiser(clip_offset=True)
    source = make_noise((1, 4, 14, 4, 4), seed=2).double()
    asked = []

    def continuation(n):
        asked.append(n)
        return instruction_with_shift([float(n), 0, 0, 0])
    result = _run(model, source, "autoregressive", continuation=continuation)
    # the end-aligned last clip shares 7 frames, and its instruction says so
    assert [(c.start, c.end, c.overlap) for c in result.clips] == [(0, 8, 0), (5, 13, 3), (6, 14, 7)]
    assert asked == [3, 7]


def test_autoregressive_sources_of_later_clips():
    model = LinearModel(max_frames=8)
    source = make_noise((1, 4, 13, 4, 4), seed=3).double()
    asked = []

    def continuation(n):
        asked.append(n)
        return instruction_with_shift([0.5 * n, 0, 0, 0])
    result = _run(model, source, "autoregressive", continuation=continuation, steps=2)
    clips = result.clips
    assert [(c.start, c.end, c.overlap) for c in clips] == [(0, 8, 0), (5, 13, 3)]
    assert asked == [3]
    second = [c for c in model.calls if c["source"].shape[2] == 8][-1]  # a call of the second clip
    fed = second["source"][-1:]  # the (V, c) branch
    torch.testing.assert_close(fed[:, :, :3].double(), result.clip_results[0][:, :, 5:].double(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(fed[:, :, 3:].double(), source[:, :, 8:13], rtol=1e-6, atol=1e-6)
    assert second["instruction"][-1, 0, 0] == 1.5  # the continuation's tokens were used
    with pytest.raises(VIDiffError, match="autoregressive mode needs the instruction text"):
        _run(model, source, "autoregressive", continuation=None)


def test_short_video_is_one_clip_in_every_mode(tiny_text_model):
    g = torch.Generator().manual_seed(4)
    source = torch.randn(1, 4, 6, 8, 8, generator=g)
    ins = tiny_text_model.encode_instruction(torch.randn(1, 77, 768, generator=g))
    null = tiny_text_model.null_instruction(torch.zeros(1, 77, 768))
    outs = [translate_video(tiny_text_model, source, ins, null, seed=3, sampler=DiffusersSampler("euler", "normal", 2),
                            long_video=LongVideoOptions(16, 4, mode), continuation=lambda n: ins).latent for mode in MODES]
    assert all(torch.equal(outs[0], o) for o in outs[1:])


@pytest.mark.parametrize("mode", MODES)
def test_tiny_model_long_video_every_mode(tiny_model, mode):
    from conftest import randomize_temporal_outputs

    randomize_temporal_outputs(tiny_model)
    g = torch.Generator().manual_seed(5)
    source = torch.randn(1, 4, 20, 8, 8, generator=g)
    ins = tiny_model.encode_instruction(torch.randn(1, 77, 768, generator=g))
    null = tiny_model.null_instruction(torch.zeros(1, 77, 768))
    steps = []
    result = translate_video(tiny_model, source, ins, null, seed=3, sampler=DiffusersSampler("euler", "normal", 2),
                             long_video=LongVideoOptions(8, 2, mode), continuation=lambda n: ins, callback=steps.append)
    assert result.latent.shape == source.shape and torch.isfinite(result.latent).all()
    expected_runs = 1 if mode == "sliding_window" else len(result.clips)
    assert len(steps) == 2 * expected_runs and steps[-1].fraction == 1.0
    assert {s.clips for s in steps} == {expected_runs}


def test_seam_measure():
    clips = plan_clips(12, 6, 2)  # (0,6,0), (4,10,2), (6,12,4): seams at new_start 6 and 10
    ramp = torch.arange(12.0).view(1, 1, 12, 1, 1).expand(1, 4, 12, 2, 2)
    smooth = seam_report(ramp, clips)
    assert smooth.boundaries == 2 and smooth.ratio == pytest.approx(1.0)
    jumpy = ramp.clone()
    jumpy[:, :, 6:] += 5
    jumpy[:, :, 10:] += 5
    report = seam_report(jumpy, clips)
    assert report.boundary_change == pytest.approx(6.0) and report.inner_change == pytest.approx(1.0)
    assert report.ratio == pytest.approx(6.0)
    assert math.isnan(seam_report(ramp, plan_clips(12, 16, 2)).ratio)
    images = jumpy[0].permute(1, 2, 3, 0)  # (F, H, W, C)
    assert seam_report(images, clips, frame_axis=0).ratio == pytest.approx(6.0)


class _DeviceModel(LinearModel):
    """A model that runs where the sampler's x is, as the host's MODEL does (its conds go to its device)."""

    def guided_eps(self, instruction, null_instruction, source, guidance):
        return lambda x_in, t, sigma: 0.5 * x_in


class _OtherDeviceSampler:
    """A ClipSampler whose x lives on another device than the source (torch's `meta` device stands for the host's
    GPU): one model call per clip, then a CPU result, as the host's sampler hands it back."""

    def __init__(self):
        self.devices: list[str] = []

    def __call__(self, eps_fn, noise, generator, on_step=None):
        eps = eps_fn(torch.zeros_like(noise, device="meta"), torch.tensor(500.0), 2.0)
        self.devices.append(eps.device.type)
        return noise


@pytest.mark.parametrize("mode", MODES)
def test_modes_follow_the_samplers_device(mode):
    """What a mode keeps beside the source (the previous clip's frames and noise, the window weights) is taken to
    the device of the sampler's x: no mix of CPU and GPU tensors halfway through a long video."""
    sampler = _OtherDeviceSampler()
    source = make_noise((1, 4, 14, 4, 4), seed=4).double()
    result = translate_video(_DeviceModel(max_frames=8), source, instruction_with_shift([0.0] * 4),
                             instruction_with_shift([0.0] * 4), sampler=sampler,
                             long_video=LongVideoOptions(8, 3, mode), continuation=lambda n: instruction_with_shift([0.0] * 4))
    assert sampler.devices and set(sampler.devices) == {"meta"}
    assert result.latent.shape == source.shape and result.latent.device.type == "cpu"


# A video in parts (meta batches, the client's segments): plan, noise stream, carried frames.

@settings(max_examples=300, deadline=None)
@given(frames=st.integers(2, 200), clip_length=st.integers(1, 24), data=st.data())
def test_a_continued_plan_writes_the_frames_left_once(frames, clip_length, data):
    overlap = data.draw(st.integers(0, clip_length - 1))
    done = data.draw(st.integers(1, frames - 1))
    clips = plan_clips(frames, clip_length, overlap, done=done)
    assert [f for c in clips for f in range(c.new_start, c.end)] == list(range(done, frames))
    assert clips[0].overlap == done - clips[0].start and clips[-1].end == frames
    assert clips[0].overlap >= min(overlap, done)  # continues from at least `overlap` done frames where there are
    assert all(c.length == min(clip_length, frames) for c in clips)
    whole = plan_clips(frames, clip_length, overlap)
    ends = [c.end for c in whole[:-1]]
    if done in ends:  # cut at a clip's end: the rest plans as in one run
        assert clips == whole[ends.index(done) + 1:]


def test_frame_noise_depends_on_seed_and_frame_only():
    from vidiff_model.long_video.carry import frame_noise
    whole = frame_noise(7, 0, 12, (1, 4, 3, 5))
    assert whole.shape == (1, 4, 12, 3, 5)
    assert torch.equal(torch.cat([frame_noise(7, 0, 5, (1, 4, 3, 5)), frame_noise(7, 5, 7, (1, 4, 3, 5))], 2), whole)
    other = frame_noise(8, 0, 12, (1, 4, 3, 5))
    for i in range(11):  # no frame of seed 8 is a frame of seed 7 (no shifted copies between neighbouring seeds)
        assert not torch.equal(other[:, :, i], whole[:, :, i + 1]) and not torch.equal(other[:, :, i], whole[:, :, i])
    assert abs(float(whole.std()) - 1) < 0.15


def _in_parts(model, source, mode, cuts, **kwargs):
    from vidiff_model.long_video.carry import Carry
    carry, parts = Carry(), []
    for a, b in zip([0, *cuts], [*cuts, source.shape[2]]):
        result = _run(model, source[:, :, a:b], mode, continue_from=carry, **kwargs)
        assert result.latent.shape[2] == b - a and result.carry.frames_done == b
        assert result.carry.frames == min(7, b)  # clip_length − 1 carried
        parts.append(result.latent)
        carry = result.carry
    return torch.cat(parts, dim=2)


@pytest.mark.parametrize("mode", ["autoregressive", "overlap_guided"])
def test_parts_cut_at_clip_ends_equal_one_run(mode):
    """clip_length 8, overlap 3 (stride 5): one run over 23 frames has clips ending at 8, 13, 18, 23; parts cut at
    8 and 18 give the same video, bit for bit, as one run with the same noise stream."""
    from vidiff_model.long_video.carry import Carry
    model = LinearModel(max_frames=8)
    source = make_noise((1, 4, 23, 4, 4), seed=5).double()
    one_run = _run(model, source, mode, continue_from=Carry(), steps=3)
    assert [c.end for c in one_run.clips] == [8, 13, 18, 23]
    torch.testing.assert_close(_in_parts(model, source, mode, [8, 18], steps=3), one_run.latent, rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", ["autoregressive", "overlap_guided"])
@pytest.mark.parametrize("cuts", [[1, 2, 3], [6, 12, 17], [4, 20], [11]])
def test_parts_cut_anywhere_keep_every_frame_in_order(mode, cuts):
    """Any cut (parts shorter than the overlap, than a clip, or not at clip ends) gives every frame once, in order:
    the ideal denoiser's target, frame for frame (overlap_guided), and the carried frames shared, not redone."""
    from vidiff_model.long_video.carry import Carry
    source = make_noise((1, 4, 23, 4, 4), seed=6).double() * 3
    parts = _in_parts(IdealDenoiser(), source, mode, cuts)
    want = source + torch.tensor([1.0, -0.5, 0.25, 0.0], dtype=torch.float64).view(1, 4, 1, 1, 1)
    assert parts.shape == source.shape
    if mode == "overlap_guided":
        torch.testing.assert_close(parts.double(), want, rtol=1e-3, atol=1e-3)
    else:  # the first part's first clip is sampled from the source itself
        torch.testing.assert_close(parts[:, :, :min(8, cuts[0])].double(), want[:, :, :min(8, cuts[0])],
                                   rtol=1e-3, atol=1e-3)
    with pytest.raises(VIDiffError, match="sliding_window .* cannot go part by part"):
        _run(IdealDenoiser(), source, "sliding_window", continue_from=Carry())


def test_a_part_of_another_frame_size_is_named():
    from vidiff_model.errors import LatentError
    from vidiff_model.long_video.carry import Carry
    model = IdealDenoiser()
    first = _run(model, make_noise((1, 4, 10, 4, 4), seed=1).double(), "overlap_guided", continue_from=Carry())
    with pytest.raises(LatentError, match=r"source: the frame size changed from 32×32 to 48×40 pixels .* after "
                                          r"frame 10"):
        _run(model, make_noise((1, 4, 6, 5, 6), seed=1).double(), "overlap_guided", continue_from=first.carry)
