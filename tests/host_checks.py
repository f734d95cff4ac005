"""Host-path checks, run by tests/test_host_model.py in a process of its own inside the real ComfyUI tree (the
pack imported as a package, as ComfyUI imports it; never with the pack's root on sys.path, whose `nodes/`
would shadow ComfyUI's). Prints one JSON line of measured figures; the test asserts on them.

    python tests/host_checks.py WORK_DIR     (cwd: the ComfyUI tree; bench/host_model.py imports it there too)

Paths compared, fp32, 3 Euler steps, tiny real-layout fixture files (IP2P single file + AnimateDiff modules):
- library: the diffusers VIDiffModel built from the parts, sampled by the host's Euler over the library's
  guided ε (today's VIDiff Sampler path);
- host: the host's own UNet from the same file (a host MODEL) + VIDiff Apply Motion Module, VIDiff Guider,
  VIDiff Noise and the host's SamplerCustomAdvanced.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
import types
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

PACK = Path(__file__).resolve().parents[1]  # the pack's root (this repository)
WORK = Path(sys.argv[1]) if __name__ == "__main__" else None  # fixture files; an importer sets its own
sys.argv = sys.argv[:1] + ["--cpu"]
sys.path[:1] = [os.getcwd(), str(PACK / "tests")]  # the ComfyUI tree first; tests/ for the fixture generators

import comfy.options  # noqa: E402

comfy.options.enable_args_parsing()
import comfy.lora  # noqa: E402
import comfy.model_sampling  # noqa: E402
import comfy.samplers  # noqa: E402
import comfy.sd  # noqa: E402
import comfy.utils  # noqa: E402
import torch  # noqa: E402
from comfy_extras import nodes_custom_sampler, nodes_freelunch  # noqa: E402

pack = types.ModuleType("vidiff_pack")
pack.__path__ = [str(PACK)]
sys.modules["vidiff_pack"] = pack
host = importlib.import_module("vidiff_pack.nodes.host")
motion = importlib.import_module("vidiff_pack.nodes.motion")
host_unet = importlib.import_module("vidiff_pack.nodes.host_unet")
injection = importlib.import_module("vidiff_pack.nodes.model_injection")
loaders = importlib.import_module("vidiff_pack.nodes.loaders")
sampler_node = importlib.import_module("vidiff_pack.nodes.sampler")
host_sampling = importlib.import_module("vidiff_pack.nodes.host_sampling")
instruction_node = importlib.import_module("vidiff_pack.nodes.instruction")
vm = importlib.import_module("vidiff_pack.vidiff_model")
ldm_unet = importlib.import_module("vidiff_pack.vidiff_model.checkpoints.ldm_unet")
import fixture_files as ff  # noqa: E402

FRAMES, STEPS, SEED, GUIDANCE = 6, 3, 7, (1.5, 7.5)
# spatial heads 4 at every level; temporal heads 8, as every AnimateDiff module has
TINY = replace(vm.tiny_config(image_instruction=False).unet, motion_num_attention_heads=8)
TINY_LDM = dict(block_out_channels=(32, 64), attention_blocks=(True, False), context_dim=768)
LDM = "model.diffusion_model."


class HostModelWrap:
    """What the host's KSAMPLER calls: (x, sigma) -> denoised x0, around a library eps_fn."""

    def __init__(self, eps_fn, model_sampling):
        self.eps_fn = eps_fn
        # the host's samplers read the schedule as model_wrap.inner_model.model_sampling, and the SDE ones
        # (given the wrap as `inner_model`) through .model_patcher.get_model_object("model_sampling")
        self.inner_model = SimpleNamespace(model_sampling=model_sampling)
        self.model_patcher = SimpleNamespace(get_model_object={"model_sampling": model_sampling}.__getitem__)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **kwargs) -> torch.Tensor:
        ms = self.inner_model.model_sampling
        x_in = ms.calculate_input(sigma, x)  # x / sqrt(σ² + 1): the variance-preserving input
        eps = self.eps_fn(x_in, ms.timestep(sigma)[0], float(sigma.flatten()[0]))
        return ms.calculate_denoised(sigma, eps.to(x.dtype), x)


class LibraryOnHostSampler:
    """The reference: the host's Euler (or any host sampler) over the library model's guided ε, with no host
    model involved (what VIDiff Sampler did before the host MODEL)."""

    def __init__(self, sampler_name: str, scheduler: str, steps: int, seed: int, beta_schedule: str = "sd15"):
        self.sampler_name, self.scheduler, self.steps, self.seed = sampler_name, scheduler, steps, seed
        self.model_sampling = host.model_sampling(beta_schedule)

    def __call__(self, eps_fn, noise, generator, on_step=None):
        sigmas = comfy.samplers.calculate_sigmas(self.model_sampling, self.scheduler, self.steps).to(noise.device)
        sampler = comfy.samplers.sampler_object(self.sampler_name)

        def callback(step, x0, x, total_steps):
            if on_step is not None:
                on_step(step + 1, total_steps, x0)

        return sampler.sample(HostModelWrap(eps_fn, self.model_sampling), sigmas,
                              {"seed": self.seed, "model_options": {}}, callback, noise.float(),
                              latent_image=torch.zeros_like(noise, dtype=torch.float32), disable_pbar=True)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).norm() / b.detach().double().norm())


def write_parts() -> dict[str, Path]:
    files = {"unet": WORK / "ip2p.safetensors", "sd15": WORK / "sd15.safetensors", "sd2": WORK / "sd2.safetensors"}
    ff.save_tensors(files["unet"], ff.ldm_checkpoint_tensors(ff.ldm_unet_shapes(in_channels=8, **TINY_LDM),
                                                             dtype=torch.float32, seed=11))
    ff.save_tensors(files["sd15"], ff.ldm_checkpoint_tensors(ff.ldm_unet_shapes(in_channels=4, **TINY_LDM),
                                                             dtype=torch.float32, seed=13))
    sd2 = dict(TINY_LDM, context_dim=1024)
    ff.save_tensors(files["sd2"], ff.ldm_checkpoint_tensors(ff.ldm_unet_shapes(**sd2, linear_proj=True),
                                                            dtype=torch.float32, seed=14))
    for version in ("v1", "v2", "v3"):
        files[version] = WORK / f"mm_{version}.ckpt"
        ff.save_tensors(files[version], ff.motion_module_tensors(version, block_out_channels=(32, 64),
                                                                 dtype=torch.float32, seed=12))
    return files


def inputs():
    g = torch.Generator().manual_seed(0)
    source = torch.randn(1, 4, FRAMES, 8, 8, generator=g)  # raw VAE latent
    text = torch.randn(1, 77, 768, generator=g)
    null = torch.randn(1, 77, 768, generator=g) * 0.1
    return source, text, null


def unet_state(path: Path) -> dict[str, torch.Tensor]:
    sd = comfy.utils.load_torch_file(str(path))
    return {k[len(LDM):]: v for k, v in sd.items() if k.startswith(LDM)}


def host_model(path: Path, dtype=torch.float32):
    return host_unet.host_unet_model(unet_state(path), num_heads=TINY.num_attention_heads, dtype=dtype)


def library_path(unet: Path, mm: Path) -> torch.Tensor:
    """Today's VIDiff Sampler: the library model, the host's Euler over the library's guided ε."""
    model, _ = vm.build_vidiff_from_parts(unet, mm, unet_config=TINY, dtype=torch.float32)
    model.eval()
    source, text, null = inputs()
    sampler = LibraryOnHostSampler("euler", "normal", STEPS, SEED, model.config.beta_schedule)
    result = vm.translate_video(model, source, model.encode_instruction(text), model.encode_instruction(null),
                                seed=SEED, sampler=sampler, guidance=vm.GuidanceConfig(*GUIDANCE))
    return result.latent[0].transpose(0, 1)  # (F, 4, h, w)


def host_path(model, frames_source=None) -> torch.Tensor:
    """VIDiff Guider + VIDiff Noise + the host's SamplerCustomAdvanced."""
    source, text, null = inputs()
    source = source if frames_source is None else frames_source
    latent = {"samples": source[0].transpose(0, 1).contiguous()}
    guider = motion.VIDiffGuider.execute(model, [[text, {}]], latent, *GUIDANCE, negative=[[null, {}]]).result[0]
    sampler = nodes_custom_sampler.KSamplerSelect.execute("euler").result[0]
    sigmas = nodes_custom_sampler.BasicScheduler.execute(model, "normal", STEPS, 1.0).result[0]
    noise = motion.VIDiffNoiseNode.execute(SEED).result[0]
    out = nodes_custom_sampler.SamplerCustomAdvanced.execute(noise, guider, sampler, sigmas,
                                                             {"samples": torch.zeros_like(latent["samples"])})
    return out.result[0]["samples"]


def library_sample(model, source, tokens, null, long_video=None, continuation=None) -> torch.Tensor:
    sampler = LibraryOnHostSampler("euler", "normal", STEPS, SEED, model.config.beta_schedule)
    return vm.translate_video(model, source, tokens, null, seed=SEED, sampler=sampler,
                              guidance=vm.GuidanceConfig(*GUIDANCE), long_video=long_video,
                              continuation=continuation).latent


def host_sample(patcher, source, tokens, null, long_video=None, continuation=None) -> torch.Tensor:
    """VIDiff Sampler's translation on a host MODEL (nodes/sampler.sample_video without the conditioning)."""
    video_model = host_sampling.HostVideoModel(patcher)
    sampler = host_sampling.HostClipSampler(video_model, "euler", "normal", STEPS, SEED)
    return vm.translate_video(video_model, source, tokens, null, seed=SEED, sampler=sampler,
                              guidance=vm.GuidanceConfig(*GUIDANCE), long_video=long_video,
                              continuation=continuation).latent


def check_sampler(files) -> dict:
    """VIDiff Sampler on the MODEL against VIDiff Guider + SamplerCustomAdvanced and the library; long videos."""
    library, _ = vm.build_vidiff_from_parts(files["unet"], files["v2"], unet_config=TINY, dtype=torch.float32)
    library.eval()
    patcher = motion.apply_motion_module(host_model(files["unet"]), str(files["v2"]), "mm")
    source, text, null = inputs()
    latent = {"samples": source[0].transpose(0, 1).contiguous()}
    node = sampler_node.sample_video(patcher, [[text, {}]], latent, SEED, STEPS, *GUIDANCE, "euler", "normal",
                                     negative=[[null, {}]])["samples"]
    out = {"sampler_vs_guider": rel(node, host_path(patcher)),
           "sampler_vs_library": rel(node, library_sample(library, source, text, null)[0].transpose(0, 1))}
    g = torch.Generator().manual_seed(3)
    long_source = torch.randn(1, 4, 48, 8, 8, generator=g)
    continuation = lambda n: text + 0.05 * n  # noqa: E731  (stands for "Based on the first n frames, ...")
    for mode in ("autoregressive", "overlap_guided", "sliding_window"):
        options = vm.LongVideoOptions(16, 4, mode)
        want = library_sample(library, long_source, text, null, options, continuation)
        got = host_sample(patcher, long_source, text, null, options, continuation)
        out[f"long_{mode}"] = {"rel_l2": rel(got, want), "frames": got.shape[2]}
    return out


def check_vidiff_files(files) -> dict:
    """Load VIDiff Model (-> MODEL) against the library's model: the shipped vidiff-mini (v-prediction, its own
    size) and a checkpoint with an image MLP given an image instruction."""
    out = {}
    g = torch.Generator().manual_seed(5)
    source, text, null = inputs()
    mini_path = PACK / "models" / "vidiff" / "vidiff_mini.safetensors"
    torch.manual_seed(0)
    image_model = vm.VIDiffModel(vm.tiny_config(image_instruction=True)).eval()
    with torch.no_grad():
        for name, p in image_model.named_parameters():
            if "motion_modules" in name and "proj_out" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)  # fresh temporal layers are the identity
    image_path = WORK / "vidiff_image.safetensors"
    vm.save_vidiff(image_model, image_path)
    embeds = torch.randn(1, 768, generator=g)
    for name, path, image in (("mini", mini_path, None), ("image_tokens", image_path, embeds)):
        library = vm.load_vidiff(path, dtype=torch.float32).eval()
        patcher = loaders.load_vidiff_model(str(path), path.name, "fp32")
        video_model = host_sampling.HostVideoModel(patcher)
        tokens, null_tokens = library.encode_instruction(text, image), library.null_instruction(null)
        host_tokens = video_model.encode_instruction(text, image)
        want = library_sample(library, source, tokens, null_tokens)
        got = host_sample(patcher, source, host_tokens, video_model.null_instruction(null))
        out[name] = {"rel_l2": rel(got, want), "tokens": list(host_tokens.shape),
                     "token_rel": rel(host_tokens, tokens),
                     "v_prediction": isinstance(patcher.get_model_object("model_sampling"),
                                                comfy.model_sampling.V_PREDICTION),
                     "schedule": library.config.beta_schedule}
    return out



def kohya_lora(strength_scale: float = 1.0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A kohya-layout LoRA (diffusers names, `lora_unet_…`) on three layers, and the weight deltas it makes
    (LDM names), W += alpha/rank · up·down."""
    g = torch.Generator().manual_seed(21)
    rank, alpha = 4, 2.0
    targets = {  # diffusers name -> (out, in, kernel)
        "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q": (32, 32, None),
        "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k": (32, 768, None),
        "up_blocks.1.attentions.2.proj_in": (32, 32, 1),
    }
    lora, deltas = {}, {}
    for name, (out_f, in_f, k) in targets.items():
        down = torch.randn(rank, in_f, generator=g) * 0.3
        up = torch.randn(out_f, rank, generator=g) * 0.3
        key = "lora_unet_" + name.replace(".", "_")
        lora[f"{key}.lora_down.weight"] = down if k is None else down[:, :, None, None]
        lora[f"{key}.lora_up.weight"] = up if k is None else up[:, :, None, None]
        lora[f"{key}.alpha"] = torch.tensor(alpha)
        delta = (up @ down) * (alpha / rank) * strength_scale
        deltas[ldm_unet.diffusers_to_ldm(name + ".weight", TINY)] = delta if k is None else delta[:, :, None, None]
    return lora, deltas


def check_parity(files) -> dict:
    out = {}
    for version in ("v1", "v2", "v3"):
        reference = library_path(files["unet"], files[version])
        model = motion.apply_motion_module(host_model(files["unet"]), str(files[version]), files[version].name)
        got = host_path(model)
        out[version] = {"rel_l2": rel(got, reference), "frames": got.shape[0],
                        "attachment": [model.get_attachment("vidiff").version,
                                       model.get_attachment("vidiff").config.beta_schedule]}
    return out


def check_lora(files) -> dict:
    lora, deltas = kohya_lora()
    merged = {k: v.clone() for k, v in comfy.utils.load_torch_file(str(files["unet"])).items()}
    for ldm_key, delta in deltas.items():
        merged[LDM + ldm_key] += delta
    merged_path = WORK / "ip2p_lora_merged.safetensors"
    ff.save_tensors(merged_path, merged)
    reference = library_path(merged_path, files["v2"])
    base = host_model(files["unet"])
    before = motion.apply_motion_module(comfy.sd.load_lora_for_models(base, None, lora, 1.0, 0)[0],
                                        str(files["v2"]), "mm")
    after = comfy.sd.load_lora_for_models(motion.apply_motion_module(base, str(files["v2"]), "mm"), None, lora,
                                          1.0, 0)[0]
    plain = host_path(motion.apply_motion_module(base, str(files["v2"]), "mm"))
    lora_before, lora_after = host_path(before), host_path(after)
    return {"lora_before_rel_l2": rel(lora_before, reference), "lora_after_rel_l2": rel(lora_after, reference),
            "lora_vs_none_rel": rel(plain, reference), "patched_keys": len(before.patches)}


def check_patches(files) -> dict:
    base = motion.apply_motion_module(host_model(files["unet"]), str(files["v2"]), "mm")
    plain = host_path(base)
    freeu = nodes_freelunch.FreeU_V2().patch(base, 1.3, 1.4, 0.9, 0.2)[0]
    calls = []

    def attn2_replace(q, k, v, extra_options):
        calls.append(extra_options["block"])
        from comfy.ldm.modules.attention import optimized_attention
        return optimized_attention(q, k * 1.5, v, extra_options["n_heads"])

    replaced = base.clone()
    replaced.set_model_attn2_replace(attn2_replace, "input", 1)
    return {"freeu_rel": rel(host_path(freeu), plain), "attn2_rel": rel(host_path(replaced), plain),
            "attn2_calls": len(calls)}


def check_fp8(files) -> dict:
    fp32 = host_path(motion.apply_motion_module(host_model(files["unet"]), str(files["v2"]), "mm"))
    fp8_model = motion.apply_motion_module(host_model(files["unet"], dtype=torch.float8_e4m3fn),
                                           str(files["v2"]), "mm")
    temporal = fp8_model.object_patches["diffusion_model.input_blocks.1"].vidiff_motion
    got = host_path(fp8_model)
    return {"fp8_rel_l2": rel(got, fp32), "finite": bool(torch.isfinite(got).all()),
            "temporal_dtype": str(temporal.temporal_transformer.proj_in.weight.dtype)}


class ForeignTemporal(torch.nn.Module):
    """Stands for a module another pack puts into the shared UNet's blocks in place while its own MODEL is loaded
    (AnimateDiff-Evolved's motion modules): it would change every result it runs in."""

    def forward(self, x, *args, **kwargs):
        return x * 3.0


def check_foreign_modules(files) -> dict:
    """VIDiff Apply Motion Module on a checkpoint whose UNet blocks hold another MODEL's injected modules (one
    after the first layer of input block 1 and of the middle block, renumbering the layers after them): the clone
    runs the host's own layers, under their own names, and samples as without them. v1 (its norms patched by
    name) and v2 (a middle-block module)."""
    out = {}
    for version in ("v1", "v2"):
        reference = host_path(motion.apply_motion_module(host_model(files["unet"]), str(files[version]), "mm"))
        base = host_model(files["unet"])
        unet = base.model.diffusion_model
        unet.input_blocks[1].insert(1, ForeignTemporal())
        unet.middle_block.insert(1, ForeignTemporal())
        model = motion.apply_motion_module(base, str(files[version]), "mm")
        blocks = {k.removeprefix("diffusion_model."): v for k, v in model.object_patches.items()
                  if k in ("diffusion_model.input_blocks.1", "diffusion_model.middle_block")}
        names = {k: [n for n, _ in b.named_children()] for k, b in blocks.items()}
        foreign = sum(isinstance(m, ForeignTemporal) for b in blocks.values() for m in b.children())
        for block in (unet.input_blocks[1], unet.middle_block):  # the other MODEL unloads: its modules go
            del block[1]
        out[version] = {"names": names, "foreign_in_clone": foreign, "rel_l2": rel(host_path(model), reference)}
    return out


def plain_path(model) -> torch.Tensor:
    """The host's own InstructPix2Pix sampling of the frames as a batch of images (no VIDiff node)."""
    source, text, _ = inputs()
    frames = source[0].transpose(0, 1).contiguous()
    guider = nodes_custom_sampler.BasicGuider.execute(model, [[text, {"concat_latent_image": frames}]]).result[0]
    sampler = nodes_custom_sampler.KSamplerSelect.execute("euler").result[0]
    sigmas = nodes_custom_sampler.BasicScheduler.execute(model, "normal", STEPS, 1.0).result[0]
    noise = nodes_custom_sampler.RandomNoise.execute(SEED).result[0]
    out = nodes_custom_sampler.SamplerCustomAdvanced.execute(noise, guider, sampler, sigmas,
                                                             {"samples": torch.zeros_like(frames)})
    return out.result[0]["samples"]


def check_input_unchanged(files) -> dict:
    """The input MODEL samples as before once a clone with temporal layers (v1: norms patched too) has run."""
    base = host_model(files["unet"])
    before_keys, before = sorted(base.model.state_dict()), plain_path(base)
    model = motion.apply_motion_module(base, str(files["v1"]), "mm")
    host_path(model)
    during = [n for n, _ in base.model.diffusion_model.input_blocks[1].named_children()]
    after = plain_path(base)
    norm = base.model.diffusion_model.input_blocks[1][0].in_layers[0]
    return {"object_patches": len(base.object_patches), "clone_object_patches": len(model.object_patches),
            "same_keys": sorted(base.model.state_dict()) == before_keys, "attachment": base.get_attachment("vidiff"),
            "children_while_clone_loaded": during,
            "children_after": [n for n, _ in base.model.diffusion_model.input_blocks[1].named_children()],
            "norm_forward_after": getattr(vars(norm).get("forward"), "__qualname__", "class"),
            "plain_rel_after": rel(after, before)}


def errors_of(fn) -> str:
    try:
        fn()
    except Exception as e:  # noqa: BLE001 (the message is what the test reads)
        return f"{type(e).__name__}: {e}"
    return "no error"


def check_errors(files) -> dict:
    ip2p = host_model(files["unet"])
    with_layers = motion.apply_motion_module(ip2p, str(files["v2"]), "mm")
    sd15 = motion.apply_motion_module(host_model(files["sd15"]), str(files["v2"]), "mm")
    source = torch.zeros(1, 4, 40, 8, 8)
    return {
        "twice": errors_of(lambda: motion.apply_motion_module(with_layers, str(files["v3"]), "mm")),
        "sd2": errors_of(lambda: motion.apply_motion_module(host_model(files["sd2"]), str(files["v2"]), "mm")),
        "four_channels": errors_of(lambda: host_path(sd15)),
        "no_layers": errors_of(lambda: host_path(ip2p)),
        "too_many_frames": errors_of(lambda: host_path(with_layers, source)),
        "not_a_motion_module": errors_of(lambda: motion.apply_motion_module(ip2p, str(files["unet"]), "x")),
    }


CHECKS = {"parity": check_parity, "sampler": check_sampler, "vidiff_files": check_vidiff_files, "lora": check_lora,
          "patches": check_patches, "fp8": check_fp8, "input_unchanged": check_input_unchanged, "errors": check_errors,
          "foreign_modules": check_foreign_modules}

def run_checks(checks: dict, only_variable: str) -> None:
    """Writes the fixture files, runs `checks` (those named in the environment variable `only_variable`,
    comma-separated; all when unset) and prints their figures as one JSON line; a crash is reported, not raised."""
    torch.manual_seed(0)
    parts = write_parts()
    results = {}
    only = os.environ.get(only_variable, "").split(",")
    for name, check in checks.items():
        if only != [""] and name not in only:
            continue
        try:
            results[name] = check(parts)
        except Exception:  # noqa: BLE001 (reported to the test, which fails on it)
            results[name] = {"crashed": traceback.format_exc()[-3000:]}
    print(json.dumps(results))


if __name__ == "__main__":
    run_checks(CHECKS, "HOST_CHECKS")  # e.g. HOST_CHECKS=parity,lora
