"""The video UNet and instructions, on the tiny config (channels 32/64) on CPU."""

import pytest
import torch
from conftest import randomize_temporal_outputs

from vidiff_model import InstructionError, LatentError, VIDiffConfig, VIDiffModel, sd15_config, tiny_config

F, H, W = 16, 8, 8


def _inputs(batch=1, frames=F, seed=0):
    g = torch.Generator().manual_seed(seed)
    noisy = torch.randn(batch, 4, frames, H, W, generator=g)
    source = torch.randn(batch, 4, frames, H, W, generator=g)
    text = torch.randn(batch, 77, 768, generator=g)
    return noisy, source, text


def test_sixteen_frame_forward_on_cpu(tiny_model):
    noisy, source, text = _inputs()
    instruction = tiny_model.encode_instruction(text)
    with torch.no_grad():
        eps = tiny_model(noisy, source, torch.tensor(500), instruction)
    assert eps.shape == (1, 4, F, H, W)  # (B, C, F, H, W)
    assert torch.isfinite(eps).all()
    with torch.no_grad():
        again = tiny_model(noisy, source, torch.tensor(500), instruction)
    assert torch.equal(eps, again)


def test_unet_has_eight_input_channels_and_source_matters(tiny_model):
    assert tiny_model.unet.conv_in.weight.shape[1] == 8
    noisy, source, text = _inputs()
    ins = tiny_model.encode_instruction(text)
    with torch.no_grad():
        a = tiny_model(noisy, source, 500, ins)
        b = tiny_model(noisy, torch.zeros_like(source), 500, ins)
    assert not torch.allclose(a, b)


def test_fresh_temporal_layers_are_identity_then_frames_interact(tiny_model):
    """Zero-initialised temporal output projections: each frame is denoised on its own, so reversing
    the frames reverses the output. With temporal weights, frames see each other and it no longer holds."""
    noisy, source, text = _inputs(frames=4)
    ins = tiny_model.encode_instruction(text)
    flip = lambda x: x.flip(2)  # noqa: E731
    with torch.no_grad():
        out = tiny_model(noisy, source, 300, ins)
        out_flipped = tiny_model(flip(noisy), flip(source), 300, ins)
    assert torch.allclose(flip(out), out_flipped, atol=1e-5)
    randomize_temporal_outputs(tiny_model)
    with torch.no_grad():
        out = tiny_model(noisy, source, 300, ins)
        out_flipped = tiny_model(flip(noisy), flip(source), 300, ins)
    assert not torch.allclose(flip(out), out_flipped, atol=1e-4)


def test_instruction_tokens_text_image_and_null(tiny_model):
    k = tiny_model.config.image_instruction.num_tokens
    _, _, text = _inputs(batch=2)
    text_only = tiny_model.encode_instruction(text)
    assert text_only.shape == (2, 77 + k, 768)
    assert torch.equal(text_only[:, :77], text) and not text_only[:, 77:].any()  # no image: zero tokens
    image = torch.randn(1, 768)
    both = tiny_model.encode_instruction(text, image)
    assert torch.equal(both[:, :77], text)
    assert both[:, 77:].abs().sum() > 0 and torch.equal(both[0, 77:], both[1, 77:])  # one image for both
    null = tiny_model.null_instruction(torch.zeros(1, 77, 768))
    assert null.shape == (1, 77 + k, 768) and not null.any()


def test_text_only_model_uses_77_tokens(tiny_text_model):
    _, _, text = _inputs()
    assert tiny_text_model.encode_instruction(text).shape == (1, 77, 768)
    with pytest.raises(InstructionError, match="no image-instruction MLP"):
        tiny_text_model.encode_instruction(text, torch.randn(1, 768))


@pytest.mark.parametrize("shape, message", [
    ((1, 78, 768), "78 text tokens.*exactly 77"),
    ((1, 77, 1280), "1280 wide.*SDXL"),
    ((1, 77, 1024), "1024 wide.*SD 2"),
    ((77, 768), "shape \\(batch, 77, 768\\)"),
])
def test_bad_text_hidden_states_named(tiny_model, shape, message):
    with pytest.raises(InstructionError, match=message):
        tiny_model.encode_instruction(torch.zeros(shape))


def test_bad_image_embedding_named(tiny_model):
    with pytest.raises(InstructionError, match="image_instruction.*\\(batch, 768\\)"):
        tiny_model.encode_instruction(torch.zeros(1, 77, 768), torch.zeros(1, 1024))
    with pytest.raises(InstructionError, match="3 image embeddings for 2"):
        tiny_model.encode_instruction(torch.zeros(2, 77, 768), torch.zeros(3, 768))


def test_bad_latents_named(tiny_model):
    noisy, source, text = _inputs(frames=2)
    ins = tiny_model.encode_instruction(text)
    with pytest.raises(LatentError, match="source_latent.*SD-1.5 video latent"):
        tiny_model(noisy, torch.zeros(1, 16, 2, H, W), 10, ins)
    with pytest.raises(LatentError, match="differ"):
        tiny_model(noisy, source[:, :, :1], 10, ins)
    with pytest.raises(LatentError, match="at most 32"):
        long = torch.zeros(1, 4, 33, H, W)
        tiny_model(long, long, 10, ins)
    with pytest.raises(LatentError, match="instruction"):
        tiny_model(noisy, source, 10, text)  # raw text without the image slots


def test_config_json_round_trip_and_sizes():
    for config in (tiny_config(), tiny_config(image_instruction=False), sd15_config(motion_max_seq_length=24)):
        assert VIDiffConfig.from_json(config.to_json()) == config
    assert sd15_config().instruction_tokens == 77
    assert tiny_config().instruction_tokens == 79
    with pytest.raises(AssertionError, match="twice out_channels"):
        type(tiny_config().unet)(in_channels=4)


def test_full_size_architecture_parameter_count():
    with torch.device("meta"):
        model = VIDiffModel(sd15_config())
    counts = model.num_parameters()
    assert counts["unet"] == 859_520_964 + 320 * 4 * 3 * 3  # SD-1.5 UNet with conv_in inflated to 8 channels
    assert 450e6 < counts["motion"] < 455e6  # AnimateDiff v2, without the positional tables
    assert model.unet.conv_in.weight.shape == (320, 8, 3, 3)


def test_v_prediction_model_hands_samplers_epsilon():
    """A v model's forward returns ε: given the true v it returns the true ε, at fractional timesteps too;
    the choice is recorded in the file's config and files without it are ε models."""
    import json
    from dataclasses import replace

    from vidiff_model.config import VIDiffConfig
    from vidiff_model.model import alpha_bar_at
    from vidiff_model.sampling import alphas_cumprod

    torch.manual_seed(0)
    model = VIDiffModel(replace(tiny_config(image_instruction=False), prediction_type="v_prediction")).eval()
    x0, eps = torch.randn(2, 4, 2, 4, 4), torch.randn(2, 4, 2, 4, 4)
    t = torch.tensor([999.0, 420.5])
    a = alpha_bar_at(t, "sd15").float().view(-1, 1, 1, 1, 1)
    noisy = a.sqrt() * x0 + (1 - a).sqrt() * eps
    v = a.sqrt() * eps - (1 - a).sqrt() * x0
    model.unet.forward = lambda *args, **kwargs: (v,)  # the ideal v model
    out = model(noisy, torch.zeros_like(noisy), t, torch.randn(2, 77, 768))
    assert torch.allclose(out, eps, atol=1e-5)
    table = alphas_cumprod("sd15")
    assert float(alpha_bar_at(torch.tensor(420.0), "sd15")) == pytest.approx(float(table[420]), rel=1e-12)
    sigma = lambda a: ((1 - a) / a) ** 0.5  # noqa: E731  between steps, log σ is linear (where samplers put t)
    half = float(alpha_bar_at(torch.tensor(420.5), "sd15"))
    assert sigma(half) == pytest.approx((sigma(float(table[420])) * sigma(float(table[421]))) ** 0.5, rel=1e-12)
    # a sampler's σ at an integer step gives the table's ᾱ: the library's own samplers (integer timesteps) see the
    # same ε with or without it, so vidiff-mini's quality table (bench/mini_quality.py) is unchanged by it
    from vidiff_model.model import v_to_epsilon
    from vidiff_model.sampling import sigma_at

    for step in (999, 500, 3):
        with_sigma = v_to_epsilon(v[:1], noisy[:1], float(step), "sd15", sigma=sigma_at(step, "sd15"))
        assert torch.allclose(with_sigma, v_to_epsilon(v[:1], noisy[:1], float(step), "sd15"), rtol=0, atol=1e-6)
    assert VIDiffConfig.from_json(model.config.to_json()).prediction_type == "v_prediction"
    assert VIDiffConfig.from_json(json.dumps({"unet": {}})).prediction_type == "epsilon"
    with pytest.raises(Exception, match="prediction_type"):
        replace(model.config, prediction_type="x0")
