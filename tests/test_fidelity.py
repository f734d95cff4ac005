"""Faithful to the original AnimateDiff (guoyww/AnimateDiff `animatediff/models/`, configs/inference/*.yaml):
norm semantics per motion-module version and the noise schedules, checked against references written here
from the original definitions (not from the library's code path), on real-layout fixture files.

References:
- temporal module: `motion_module.py` `TemporalTransformer3DModel` / `TemporalTransformerBlock` /
  `VersatileAttention` / `PositionalEncoding`: "b c f h w -> (b f) c h w", GroupNorm(32, eps 1e-6), proj_in,
  per attention block LayerNorm -> "(b f) d c -> (b d) f c" + sinusoidal table -> self-attention over
  frames (8 heads) -> to_out, + residual; LayerNorm -> GEGLU FF, + residual; proj_out; + the input.
- resnet: `resnet.py` `ResnetBlock3D` with `InflatedGroupNorm` (v2/v3) or a plain GroupNorm over the
  5-D video tensor (v1, `use_inflated_groupnorm: false`).
- schedules: `noise_scheduler_kwargs` (beta_start 0.00085, beta_end 0.012, "linear") against diffusers'
  DDPMScheduler, and ComfyUI's own ModelSamplingDiscrete ("sqrt_linear") in a separate process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from analytic_models import IdealDenoiser, instruction_with_shift
from fixture_files import ldm_checkpoint_tensors, ldm_unet_shapes, motion_module_tensors, save_tensors
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D
from safetensors import safe_open
from safetensors.torch import save_file

from vidiff_model import (CheckpointError, DiffusersSampler, GuidanceConfig, VIDiffModel, build_vidiff_from_parts,
                          load_vidiff, save_vidiff, tiny_config, translate_video)
from vidiff_model.cli import main as cli_main
from vidiff_model.sampling import alphas_cumprod, sigma_at

ROOT = Path(__file__).resolve().parents[1]
HEADS = 8  # configs/inference/inference-v*.yaml: motion_module_kwargs.num_attention_heads
# tiny sizes, original head count (8): channels 32/64 give head widths 4/8
TINY = replace(tiny_config(image_instruction=False).unet, motion_num_attention_heads=HEADS)
TINY_LDM = dict(block_out_channels=(32, 64), attention_blocks=(True, False), context_dim=768)
LDM = "model.diffusion_model."


# -- references, from the original definitions --------------------------------------------------------------
def reference_temporal_module(x: torch.Tensor, w: dict, prefix: str, norm: str = "per_frame") -> torch.Tensor:
    """AnimateDiff's VanillaTemporalModule on x (B, C, F, H, W) with original-layout weights `w` (float64).
    `norm="clip"` instead applies the GroupNorm to the 5-D tensor (what diffusers' block does)."""
    g = lambda name: w[prefix + "temporal_transformer." + name].double()  # noqa: E731
    b, c, f, h, wd = x.shape
    frames = x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, wd)  # "b c f h w -> (b f) c h w"
    if norm == "per_frame":
        hs = F.group_norm(frames, 32, g("norm.weight"), g("norm.bias"), eps=1e-6)
    else:
        hs = F.group_norm(x, 32, g("norm.weight"), g("norm.bias"), eps=1e-6).permute(0, 2, 1, 3, 4).reshape(frames.shape)
    hs = hs.permute(0, 2, 3, 1).reshape(b * f, h * wd, c)
    hs = F.linear(hs, g("proj_in.weight"), g("proj_in.bias"))
    blk = "transformer_blocks.0."
    for a in (0, 1):
        normed = F.layer_norm(hs, (c,), g(f"{blk}norms.{a}.weight"), g(f"{blk}norms.{a}.bias"), eps=1e-5)
        hs = _temporal_attention(normed, lambda n, a=a: g(f"{blk}attention_blocks.{a}.{n}"), f) + hs
    normed = F.layer_norm(hs, (c,), g(f"{blk}ff_norm.weight"), g(f"{blk}ff_norm.bias"), eps=1e-5)
    value, gate = F.linear(normed, g(f"{blk}ff.net.0.proj.weight"), g(f"{blk}ff.net.0.proj.bias")).chunk(2, dim=-1)
    hs = F.linear(value * F.gelu(gate), g(f"{blk}ff.net.2.weight"), g(f"{blk}ff.net.2.bias")) + hs  # GEGLU FF
    hs = F.linear(hs, g("proj_out.weight"), g("proj_out.bias"))
    out = hs.reshape(b * f, h, wd, c).permute(0, 3, 1, 2) + frames
    return out.reshape(b, f, c, h, wd).permute(0, 2, 1, 3, 4)  # "(b f) c h w -> b c f h w"


def _temporal_attention(x: torch.Tensor, g, f: int) -> torch.Tensor:
    """VersatileAttention("Temporal") on ((b f), d, c): attention over the f frames of every position d."""
    bf, d, c = x.shape
    seq = x.reshape(bf // f, f, d, c).permute(0, 2, 1, 3).reshape(-1, f, c)  # "(b f) d c -> (b d) f c"
    seq = seq + g("pos_encoder.pe")[:, :f]
    heads = lambda t: t.reshape(t.shape[0], f, HEADS, c // HEADS).transpose(1, 2)  # noqa: E731
    q, k, v = (heads(F.linear(seq, g(f"to_{n}.weight"))) for n in "qkv")
    attn = torch.softmax(q @ k.transpose(-1, -2) * (c // HEADS) ** -0.5, dim=-1) @ v  # (N, heads, f, c/heads)
    out = F.linear(attn.transpose(1, 2).reshape(-1, f, c), g("to_out.0.weight"), g("to_out.0.bias"))
    return out.reshape(bf // f, d, f, c).permute(0, 2, 1, 3).reshape(bf, d, c)  # "(b d) f c -> (b f) d c"


def reference_resnet(x: torch.Tensor, temb: torch.Tensor, w: dict, prefix: str, frames: int,
                     inflated: bool) -> torch.Tensor:
    """ResnetBlock3D (no shortcut conv) on the UNet's (B·F, C, H, W) frames with LDM-layout weights."""
    g = lambda name: w[prefix + name].double()  # noqa: E731

    def norm(t, name):
        if inflated:  # InflatedGroupNorm: per frame
            return F.group_norm(t, 32, g(name + ".weight"), g(name + ".bias"), eps=1e-5)
        bf, c, h, wd = t.shape  # nn.GroupNorm on "b c f h w": over all frames
        video = t.reshape(bf // frames, frames, c, h, wd).transpose(1, 2)
        out = F.group_norm(video, 32, g(name + ".weight"), g(name + ".bias"), eps=1e-5)
        return out.transpose(1, 2).reshape(bf, c, h, wd)

    hs = F.conv2d(F.silu(norm(x, "in_layers.0")), g("in_layers.2.weight"), g("in_layers.2.bias"), padding=1)
    hs = hs + F.linear(F.silu(temb), g("emb_layers.1.weight"), g("emb_layers.1.bias"))[:, :, None, None]
    hs = F.conv2d(F.silu(norm(hs, "out_layers.0")), g("out_layers.3.weight"), g("out_layers.3.bias"), padding=1)
    return x + hs


# -- fixtures ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Tiny real-layout files: an IP2P single file and v1/v2/v3 motion modules (fp32), with their tensors."""
    d = tmp_path_factory.mktemp("fidelity")
    unet = ldm_checkpoint_tensors(ldm_unet_shapes(in_channels=8, **TINY_LDM), dtype=torch.float32, seed=11)
    files = {"unet": (save_tensors(d / "ip2p.safetensors", unet), unet)}
    for version in ("v1", "v2", "v3"):
        mm = motion_module_tensors(version, block_out_channels=(32, 64), dtype=torch.float32, seed=12)
        files[version] = (save_tensors(d / f"mm_{version}.ckpt", mm), mm)
    return files


def _build(parts, version, **kwargs):
    model, _ = build_vidiff_from_parts(parts["unet"][0], parts[version][0], unet_config=TINY, **kwargs)
    return model.double().eval()


def _inputs(frames=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    noisy = torch.randn(1, 4, frames, 8, 8, generator=g, dtype=torch.float64)
    source = torch.randn(1, 4, frames, 8, 8, generator=g, dtype=torch.float64)
    text = torch.randn(1, 77, 768, generator=g, dtype=torch.float64)
    return noisy, source, text


def _rel(a, b):
    return float((a - b).norm() / b.norm())


# -- norms ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_built_model_records_the_original_semantics(parts, version):
    config = _build(parts, version).config
    assert config.unet.temporal_norm == "per_frame"
    assert config.unet.spatial_norm == ("clip" if version == "v1" else "per_frame")  # use_inflated_groupnorm
    assert config.beta_schedule == "animatediff"  # autoselect: the motion module's schedule
    assert _build(parts, version, beta_schedule="sd15").config.beta_schedule == "sd15"


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_every_temporal_module_matches_the_original(parts, version):
    """Each motion module of the built model, on (B·F, C, H, W) features, against the original's definition
    on the file's own weights; the 5-D (diffusers) statistics are measurably different."""
    model = _build(parts, version)
    weights = parts[version][1]
    g = torch.Generator().manual_seed(1)
    checked = 0
    for name, module in model.unet.named_modules():
        if not isinstance(module, AnimateDiffTransformer3D):
            continue
        c = module.norm.num_channels
        x = torch.randn(2, c, 5, 4, 4, generator=g, dtype=torch.float64) * 3
        x = x + torch.linspace(-2, 2, 5, dtype=torch.float64).view(1, 1, 5, 1, 1)  # frames with other statistics
        with torch.no_grad():
            ours = module(x.transpose(1, 2).reshape(10, c, 4, 4), num_frames=5)  # diffusers' (B·F, C, H, W) input
            ours = ours.reshape(2, 5, c, 4, 4).transpose(1, 2)  # (B, C, F, H, W)
            assert _rel(ours, reference_temporal_module(x, weights, name + ".", "per_frame")) < 1e-10, name
            assert _rel(ours, reference_temporal_module(x, weights, name + ".", "clip")) > 1e-3, name
        checked += 1
    assert checked == (11 if version == "v2" else 10)  # 4 down, 6 up (+ 1 mid for v2)


@pytest.mark.parametrize("version, inflated", [("v1", False), ("v2", True), ("v3", True)])
def test_resnet_norms_match_the_original_per_version(parts, version, inflated):
    """A spatial ResnetBlock inside a full UNet forward: v1 takes statistics over the clip, v2/v3 per frame."""
    model = _build(parts, version)
    seen = {}
    block = model.unet.down_blocks[0].resnets[0]  # LDM input_blocks.1.0
    block.register_forward_hook(lambda m, args, kwargs, out: seen.update(x=kwargs["input_tensor"], temb=kwargs["temb"],
                                                                         out=out), with_kwargs=True)
    noisy, source, text = _inputs(frames=6)
    noisy = noisy + torch.linspace(-3, 3, 6, dtype=torch.float64).view(1, 1, 6, 1, 1)  # frames with other statistics
    with torch.no_grad():
        model(noisy, source, 400, model.encode_instruction(text))
        w = parts["unet"][1]
        want = reference_resnet(seen["x"], seen["temb"], w, LDM + "input_blocks.1.0.", 6, inflated)
        other = reference_resnet(seen["x"], seen["temb"], w, LDM + "input_blocks.1.0.", 6, not inflated)
    assert _rel(seen["out"], want) < 1e-10
    assert _rel(seen["out"], other) > 1e-4


def _without_temporal_attention(model: VIDiffModel) -> VIDiffModel:
    """Zero the output projections of every temporal attention (proj_in, the temporal norm, FF and proj_out
    stay): what is left of a motion module acts on each position of each frame, after its GroupNorm."""
    with torch.no_grad():
        for name, p in model.unet.named_parameters():
            if "motion_modules" in name and (".attn1.to_out." in name or ".attn2.to_out." in name):
                p.zero_()
    return model


def _frame0_moves(model: VIDiffModel) -> float:
    """How much frame 0's prediction changes when only the other frames change."""
    noisy, source, text = _inputs(frames=6)
    ins = model.encode_instruction(text)
    other = noisy.clone()
    other[:, :, 1:] = other[:, :, 1:] * 2.5 + 1.0
    with torch.no_grad():
        a, b = model(noisy, source, 400, ins), model(other, source, 400, ins)
    return _rel(b[:, :, 0], a[:, :, 0])


@pytest.mark.parametrize("version, independent", [("v1", False), ("v2", True), ("v3", True)])
def test_frames_independent_without_temporal_attention_except_v1(parts, version, independent):
    model = _without_temporal_attention(_build(parts, version))
    moved = _frame0_moves(model)
    assert (moved < 1e-12) if independent else (moved > 1e-4), moved
    # with only the temporal norm over the clip (the old semantics), frames depend on each other too
    if independent:
        old = _without_temporal_attention(_as_config(model, replace(model.config.unet, temporal_norm="clip")))
        assert _frame0_moves(old) > 1e-4
    # with proj_out zeroed as well, a v2/v3 model is per frame, and v1 still is not (spatial norms)
    with torch.no_grad():
        for name, p in model.unet.named_parameters():
            if "motion_modules" in name and ".proj_out." in name:
                p.zero_()
    moved = _frame0_moves(model)
    assert (moved < 1e-12) if independent else (moved > 1e-4), moved


def _as_config(model: VIDiffModel, unet_config) -> VIDiffModel:
    other = VIDiffModel(replace(model.config, unet=unet_config)).double().eval()
    other.load_state_dict(model.state_dict())
    return other


def test_norm_semantics_keep_the_state_dict_keys(parts):
    v1, v2 = _build(parts, "v1"), _build(parts, "v2")
    plain = VIDiffModel(replace(v1.config, unet=replace(v1.config.unet, temporal_norm="clip", spatial_norm="per_frame")))
    assert list(v1.state_dict()) == list(plain.state_dict())
    mid = {k for k in v2.state_dict() if k.startswith("unet.mid_block.motion_modules")}
    assert mid and set(v2.state_dict()) - set(v1.state_dict()) == mid


# -- files: what is recorded, and files written before the fields existed ---------------------------------------
def _strip_new_fields(path: Path, out: Path) -> None:
    """A copy of a VIDiff file whose config JSON is what this project wrote before issue 12."""
    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    config = json.loads(meta["config"])
    for key in ("temporal_norm", "spatial_norm"):
        del config["unet"][key]
    del config["beta_schedule"]
    meta["config"] = json.dumps(config, sort_keys=True)
    save_file(tensors, str(out), metadata=meta)


def test_old_file_loads_with_the_semantics_it_was_made_with(parts, tmp_path):
    model = _build(parts, "v2").float()
    path, old = tmp_path / "new.safetensors", tmp_path / "old.safetensors"
    save_vidiff(model, path)
    _strip_new_fields(path, old)
    with safe_open(str(old), "pt") as f:
        assert "temporal_norm" not in f.metadata()["config"] and "beta_schedule" not in f.metadata()["config"]
    loaded_old, loaded_new = load_vidiff(old), load_vidiff(path)
    assert loaded_new.config == model.config
    assert (loaded_old.config.unet.temporal_norm, loaded_old.config.unet.spatial_norm) == ("clip", "per_frame")
    assert loaded_old.config.beta_schedule == "sd15"
    assert load_vidiff(old, beta_schedule="animatediff").config.beta_schedule == "animatediff"
    # what it computes: diffusers' GroupNorm over the clip, against the original-definition reference
    module = loaded_old.unet.down_blocks[0].motion_modules[0].double()
    x = torch.randn(1, 32, 4, 4, 4, dtype=torch.float64) + torch.linspace(-2, 2, 4, dtype=torch.float64).view(1, 1, 4, 1, 1)
    with torch.no_grad():
        ours = module(x.transpose(1, 2).reshape(4, 32, 4, 4), num_frames=4).reshape(1, 4, 32, 4, 4).transpose(1, 2)
    weights = parts["v2"][1]
    assert _rel(ours, reference_temporal_module(x, weights, "down_blocks.0.motion_modules.0.", "clip")) < 1e-6
    assert _rel(ours, reference_temporal_module(x, weights, "down_blocks.0.motion_modules.0.", "per_frame")) > 1e-3


def test_bad_recorded_semantics_are_named(tmp_path):
    path = tmp_path / "m.safetensors"
    save_vidiff(VIDiffModel(tiny_config()), path)
    with safe_open(str(path), "pt") as f:
        meta, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    config = json.loads(meta["config"])
    config["unet"]["temporal_norm"] = "per_batch"
    save_file(tensors, str(path), metadata={**meta, "config": json.dumps(config)})
    with pytest.raises(CheckpointError, match="temporal_norm: unknown value 'per_batch'"):
        load_vidiff(path)


def test_new_configs_default_to_the_original_semantics():
    for config in (tiny_config(), __import__("vidiff_model").sd15_config()):
        assert config.unet.temporal_norm == config.unet.spatial_norm == "per_frame" and config.beta_schedule == "sd15"


def test_cli_build_records_the_schedule(parts, tmp_path, capsys, monkeypatch):
    import vidiff_model.cli as cli

    monkeypatch.setattr(cli, "build_vidiff_from_parts",
                        lambda *a, **k: build_vidiff_from_parts(*a, unet_config=TINY, **k))
    for choice, want in (("autoselect", "animatediff"), ("sd15", "sd15")):
        out = tmp_path / f"{choice}.safetensors"
        assert cli_main(["build", "--unet", str(parts["unet"][0]), "--motion-module", str(parts["v1"][0]),
                         "--out", str(out), "--beta-schedule", choice]) == 0
        config = load_vidiff(out).config
        assert config.beta_schedule == want and config.unet.spatial_norm == "clip"
    assert "noise schedule animatediff" in capsys.readouterr().out


# -- noise schedules --------------------------------------------------------------------------------------
def test_schedules_match_diffusers():
    from diffusers import DDPMScheduler

    for name, diffusers_name in (("animatediff", "linear"), ("sd15", "scaled_linear")):
        ref = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                            beta_schedule=diffusers_name).alphas_cumprod.double()
        torch.testing.assert_close(alphas_cumprod(name), ref, rtol=1e-6, atol=0)
        sigmas = ((1 - ref) / ref) ** 0.5
        ours = torch.tensor([sigma_at(t, name) for t in range(1000)], dtype=torch.float64)
        torch.testing.assert_close(ours, sigmas, rtol=1e-4, atol=0)  # diffusers keeps float32 ᾱ
    assert sigma_at(999, "animatediff") > 1.5 * sigma_at(999, "sd15")  # they really differ (25.1 vs 14.6)


def test_library_sampler_runs_on_the_models_schedule():
    from diffusers import EulerDiscreteScheduler

    ref = EulerDiscreteScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="linear",
                                 timestep_spacing="trailing", steps_offset=1)
    ref.set_timesteps(8)
    sched = DiffusersSampler("euler", "normal", 8).for_model("animatediff").make_scheduler()
    torch.testing.assert_close(sched.sigmas, ref.sigmas)
    assert DiffusersSampler(beta_schedule="sd15").for_model("animatediff").beta_schedule == "sd15"  # explicit wins


class _LinearScheduleDenoiser(IdealDenoiser):
    """The exact ε of a model trained on AnimateDiff's schedule."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.config = replace(self.config, beta_schedule="animatediff")

    def forward(self, x, source, t, instruction, sigma=None):
        abar = 1.0 / (1.0 + sigma_at(t, "animatediff") ** 2)
        return (x - abar**0.5 * self.target(source, instruction)) / (1.0 - abar) ** 0.5


@pytest.mark.parametrize("sampler_name", ["euler", "dpmpp_2m"])
def test_translate_uses_the_recorded_schedule(sampler_name):
    src = torch.randn(1, 4, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 4
    run = lambda sampler: translate_video(_LinearScheduleDenoiser(), src, instruction_with_shift([1, 0, 0, 0]),  # noqa: E731
                                          instruction_with_shift([0] * 4), seed=1, sampler=sampler,
                                          guidance=GuidanceConfig(1.0, 1.0)).latent.double()
    want = src + torch.tensor([1.0, 0, 0, 0], dtype=torch.float64).view(1, 4, 1, 1, 1)
    torch.testing.assert_close(run(DiffusersSampler(sampler_name, "normal", 10)), want, rtol=1e-3, atol=1e-3)
    wrong = run(DiffusersSampler(sampler_name, "normal", 10, beta_schedule="sd15"))
    assert not torch.allclose(wrong, want, rtol=1e-2, atol=1e-2)


_HOST_SIGMAS = """
import importlib, json, sys, types
sys.argv = sys.argv[:1] + ["--cpu"]
import comfy.options; comfy.options.enable_args_parsing()
import comfy.model_sampling
pack = types.ModuleType("vidiff_pack"); pack.__path__ = [sys.argv_root]; sys.modules["vidiff_pack"] = pack
host = importlib.import_module("vidiff_pack.nodes.host")
class MS(comfy.model_sampling.ModelSamplingDiscrete, comfy.model_sampling.EPS):
    pass
cfg = lambda s: types.SimpleNamespace(sampling_settings={"beta_schedule": s})
print(json.dumps({
    "host_sd15": host.model_sampling("sd15").sigmas.tolist(),
    "host_animatediff": host.model_sampling("animatediff").sigmas.tolist(),
    "comfy_sd15_default": MS(None).sigmas.tolist(),
    "comfy_sqrt_linear": MS(cfg("sqrt_linear")).sigmas.tolist(),
}))
"""


@pytest.mark.comfyui
def test_host_schedules_match_comfyui_sqrt_linear_and_diffusers():
    """The host samplers' schedule (nodes/host.py) in a real ComfyUI process: "animatediff" is ComfyUI's
    sqrt_linear and diffusers' linear; "sd15" is ComfyUI's SD-1.5 default and diffusers' scaled_linear."""
    from comfy_harness import comfyui_path

    code = _HOST_SIGMAS.replace("sys.argv_root", repr(str(ROOT)))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=comfyui_path(), env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = {k: torch.tensor(v, dtype=torch.float64) for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}
    for name, host, comfy in (("animatediff", "host_animatediff", "comfy_sqrt_linear"),
                              ("sd15", "host_sd15", "comfy_sd15_default")):
        ours = torch.tensor([sigma_at(t, name) for t in range(1000)], dtype=torch.float64)
        torch.testing.assert_close(got[host], got[comfy], rtol=0, atol=0)
        torch.testing.assert_close(got[host], ours, rtol=1e-5, atol=0)  # ComfyUI keeps float32 sigmas


# -- loading: converting reads tensor by tensor -------------------------------------------------------------
def test_plain_reads_equal_memory_mapped_reads(tmp_path):
    from vidiff_model.checkpoints.io import TensorFile

    tensors = {"h": torch.randn(3, 5).half(), "b": torch.randn(7).bfloat16(), "f": torch.randn(2, 2, 2),
               "d": torch.randn(4, dtype=torch.float64), "i": torch.arange(6), "m": torch.tensor([True, False]),
               "s": torch.tensor(2.5), "e": torch.zeros(0, 3)}
    path = tmp_path / "t.safetensors"
    save_file(tensors, str(path))
    mapped = TensorFile(path)
    for k, v in tensors.items():
        got = TensorFile(path)._read(k)
        assert got.dtype == v.dtype and got.shape == v.shape and torch.equal(got, v) and torch.equal(mapped.get(k), v), k
    converting = TensorFile(path).convert_to(torch.float32)
    assert all(torch.equal(converting.take(k), v) for k, v in tensors.items())


def test_converting_load_keeps_the_peak_near_the_result(tmp_path):
    """fp16 files -> fp32 model, in a fresh process: peak RSS growth stays within the fp32 result plus a
    margin far below the fp16 source's size (before: source and result were both alive)."""
    d = tmp_path
    unet = ldm_checkpoint_tensors(ldm_unet_shapes(in_channels=8, block_out_channels=(64, 128, 256, 256),
                                                  attention_blocks=(True, True, True, False), context_dim=768),
                                  dtype=torch.float16, seed=3)
    save_tensors(d / "ip2p.safetensors", unet)
    save_tensors(d / "mm.ckpt", motion_module_tensors("v2", block_out_channels=(64, 128, 256, 256),
                                                      dtype=torch.float16))
    code = f"""
import json, sys, torch
sys.path.insert(0, {str(ROOT)!r})
import vidiff_model
from vidiff_model import build_vidiff_from_parts, sd15_config
def hwm():
    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) * 1024
config = sd15_config().unet.__class__(**{{**sd15_config().unet.__dict__, 'block_out_channels': (64, 128, 256, 256)}})
base = hwm()
model, _ = build_vidiff_from_parts({str(d / 'ip2p.safetensors')!r}, {str(d / 'mm.ckpt')!r}, dtype=torch.float32,
                                   unet_config=config)
size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
print(json.dumps({{"growth": hwm() - base, "result": size}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    source = got["result"] // 2  # the fp16 weights used
    assert got["growth"] < got["result"] + 0.5 * source, got
