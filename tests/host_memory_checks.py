"""Where VIDiff's weights live under the host's memory manager (issue 33), checked in a real ComfyUI process as
tests/host_checks.py is (run by tests/test_host_memory.py; one JSON line of measured facts):

    python tests/host_memory_checks.py WORK_DIR     (cwd: the ComfyUI tree; HOST_MEMORY_CHECKS=meta,sizes to pick)

- meta: the host's own low-VRAM load (`ModelPatcher.load(meta, lowvram_model_memory=1)`: nothing fits, every
  weight stays on the CPU and is cast per call) and a UNet call with the input on torch's `meta` device, which
  stands for a GPU: a tensor left on the CPU fails it ("Tensor on device cpu is not on the expected device meta").
  v1 (clip-wide GroupNorms), v2, v3 and a VIDiff checkpoint with an image MLP; the temporal layer, v1's norm patch
  and the MLP also called alone in bf16, which their output must keep.
- reload: a clone loaded after its base was fully loaded gets every weight loaded or cast (the host skips loading
  a clone with its base's `patches_uuid`; the control shows it).
- sizes: what the memory manager is told (`model_size`) against the bytes of the patched module tree.
- partial: a full-size VIDiff MODEL (SD-1.5 InstructPix2Pix UNet + v2 module, random weights, fp32) sampled by
  VIDiff Sampler and VIDiff Guider fully loaded and through the host's partial load with a budget of a third of
  the model: the same latents, and which modules the host offloaded.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

WORK_DIR = Path(sys.argv[1]) if __name__ == "__main__" else None
# The host's attention as on an NVIDIA card (torch's SDPA): its CPU default (sub-quadratic) asks the device for
# free memory, which the `meta` device cannot answer. Parsed here, before host_checks' own "--cpu".
sys.argv = sys.argv[:1] + ["--cpu", "--use-pytorch-cross-attention"]
sys.path.insert(0, os.getcwd())
import comfy.options  # noqa: E402

comfy.options.enable_args_parsing()
import comfy.cli_args  # noqa: E402, F401
import host_checks as hc  # noqa: E402  (sets up sys.path and the pack as ComfyUI imports it)

import comfy.model_management as mm  # noqa: E402
import comfy.sd  # noqa: E402
import torch  # noqa: E402
from comfy_extras import nodes_freelunch  # noqa: E402

ff, motion, loaders, vm, sampler_node = hc.ff, hc.motion, hc.loaders, hc.vm, hc.sampler_node
injection = hc.injection
instruction = hc.importlib.import_module("vidiff_pack.vidiff_model.instruction")
META = torch.device("meta")


def vidiff_image_file():
    """A tiny VIDiff checkpoint with an image MLP (2 image tokens), as host_checks.check_vidiff_files makes it."""
    path = hc.WORK / "vidiff_image.safetensors"
    if not path.exists():
        torch.manual_seed(0)
        vm.save_vidiff(vm.VIDiffModel(vm.tiny_config(image_instruction=True)).eval(), path)
    return path


def tiny_models(files) -> dict:
    models = {v: motion.apply_motion_module(hc.host_model(files["unet"]), str(files[v]), v) for v in ("v1", "v2", "v3")}
    models["vidiff"] = loaders.load_vidiff_model(str(vidiff_image_file()), "vidiff_image", "fp32")
    return models


def is_vidiff(name: str) -> bool:
    return injection.MOTION_CHILD in name.split(".")


def weight_modules(model):
    """(name, module) of every module holding weights of its own, object patches applied (the clone loaded)."""
    return [(n, m) for n, m in model.model.diffusion_model.named_modules()
            if any(True for _ in m.parameters(recurse=False))]


def unet_call(patcher, x: torch.Tensor, tokens: int) -> torch.Tensor:
    """The host UNet of a loaded clone on two clips of x.shape[0] / 2 frames, with the MODEL's patches and
    wrappers as the host's sampler hands them over."""
    options = {**patcher.model_options["transformer_options"], "wrappers": patcher.wrappers, "cond_or_uncond": [0, 1]}
    context = torch.zeros(x.shape[0], tokens, 768, device=x.device, dtype=x.dtype)
    timesteps = torch.full((x.shape[0],), 500.0, device=x.device)
    return patcher.model.diffusion_model(x, timesteps=timesteps, context=context, transformer_options=options)


def check_meta(files) -> dict:
    out = {}
    for name, model in tiny_models(files).items():
        tokens = vidiff_attachment_tokens(model)
        model.patch_model(device_to=META, lowvram_model_memory=1)  # the host's partial load, with no room at all
        try:
            modules = weight_modules(model)
            cast = [n for n, m in modules if getattr(m, "comfy_cast_weights", False)]
            got = unet_call(model, torch.zeros(2 * hc.FRAMES, 8, 8, 8, device=META), tokens)
            temporal = model.get_model_object("diffusion_model.input_blocks.1").vidiff_motion
            x16 = torch.zeros(hc.FRAMES, 32, 8, 8, device=META, dtype=torch.bfloat16)
            alone = {"temporal": temporal(x16, hc.FRAMES)}
            norm = model.model.diffusion_model.input_blocks[1][0].in_layers[0]
            if "forward" in vars(norm):  # v1: the clip-wide patch of the resnets' GroupNorms
                alone["clip_norm"] = norm(x16)
            attachment = injection.vidiff_attachment(model)
            if attachment.image_proj is not None:
                embeds = torch.zeros(1, 768, device=META, dtype=torch.bfloat16)
                alone["image_mlp"] = attachment.image_proj(embeds)
                text = torch.zeros(1, 77, 768, device=META, dtype=torch.bfloat16)
                alone["instruction"] = instruction.encode_instruction(attachment.config, attachment.image_proj, text,
                                                                      embeds)
            out[name] = {"device": got.device.type, "shape": list(got.shape), "weight_modules": len(modules),
                         "not_cast": [n for n, _ in modules if n not in cast],
                         "temporal_cast": sum(is_vidiff(n) for n in cast),
                         "alone": {k: [v.device.type, str(v.dtype)] for k, v in alone.items()}}
        finally:
            model.unpatch_model(model.offload_device)
    return out


def vidiff_attachment_tokens(model) -> int:
    return injection.vidiff_attachment(model).config.instruction_tokens


def left_behind(model) -> list[str]:
    """Weight modules of a loaded clone the host neither loaded nor set to cast per call."""
    return [n for n, m in weight_modules(model)
            if not getattr(m, "comfy_patched_weights", False) and not getattr(m, "comfy_cast_weights", False)]


def check_reload(files) -> dict:
    base = hc.host_model(files["unet"])
    mm.load_models_gpu([base])
    v2 = motion.apply_motion_module(base, str(files["v2"]), "v2")
    mm.load_models_gpu([v2])
    after_base = left_behind(v2)
    v3 = motion.apply_motion_module(base, str(files["v3"]), "v3")
    mm.load_models_gpu([v3])
    after_other_clone = left_behind(v3)
    # control: what the host does when the clone keeps its base's patches_uuid
    mm.load_models_gpu([base])
    control = motion.apply_motion_module(base, str(files["v1"]), "v1")
    control.patches_uuid = base.patches_uuid
    mm.load_models_gpu([control])
    skipped = left_behind(control)
    mm.unload_all_models()
    return {"after_base": after_base, "after_other_clone": after_other_clone,
            "control_left_behind": len(skipped), "control_temporal": sum(is_vidiff(n) for n in skipped)}


def patched_bytes(model) -> int:
    """Bytes of the module tree with the clone's object patches applied (the temporal layers in the UNet)."""
    model.patch_model(load_weights=False)
    try:
        return mm.module_size(model.model)
    finally:
        model.unpatch_model(unpatch_weights=False)


def check_sizes(files) -> dict:
    models = tiny_models(files)
    base = hc.host_model(files["unet"])
    out = {"base": base.model_size()}
    for name, model in models.items():
        image_mlp = injection.module_bytes(injection.vidiff_attachment(model).image_proj)
        out[name] = {"model_size": model.model_size(), "patched_tree": patched_bytes(model), "image_mlp": image_mlp,
                     "loaded_model_memory": mm.LoadedModel(model).model_memory()}
    v2 = models["v2"]
    lora, _ = hc.kohya_lora()
    lora_base = comfy.sd.load_lora_for_models(base, None, lora, 1.0, 0)[0]
    out["after"] = {"clone": v2.clone().model_size(),
                    "lora": comfy.sd.load_lora_for_models(v2, None, lora, 1.0, 0)[0].model_size(),
                    "freeu": nodes_freelunch.FreeU_V2().patch(v2, 1.3, 1.4, 0.9, 0.2)[0].model_size(),
                    "lora_then_motion": motion.apply_motion_module(lora_base, str(files["v2"]), "v2").model_size()}
    return out


# -- partial loading of a full-size model ------------------------------------------------------------------------
@contextmanager
def free_vram(budget: int):
    """The host's memory manager as on a GPU with `budget` bytes free for weights: `load_models_gpu` computes the
    room a model may take from the device's free memory (less what it already holds) and hands it to
    `LoadedModel.model_load`; on a CPU device it always loads whole, so the room is given here instead. The rest
    (which modules load, which are offloaded and cast per call) is the host's `ModelPatcher.partially_load`."""
    original = mm.LoadedModel.model_load

    def model_load(self, lowvram_model_memory=0, force_patch_weights=False):
        return original(self, max(budget - self.model_loaded_memory(), 1), force_patch_weights)

    mm.LoadedModel.model_load = model_load
    try:
        yield
    finally:
        mm.LoadedModel.model_load = original


def full_size_model():
    state = ff.ldm_checkpoint_tensors(ff.ldm_unet_shapes(in_channels=8), dtype=torch.float32, seed=31)
    state = {k[len(hc.LDM):]: v for k, v in state.items() if k.startswith(hc.LDM)}
    base = hc.host_unet.host_unet_model(state, num_heads=8, dtype=torch.float32)
    del state
    path = hc.WORK / "mm_v2_full.safetensors"
    ff.save_tensors(path, ff.motion_module_tensors("v2", dtype=torch.float16, seed=32))
    return motion.apply_motion_module(base, str(path), path.name)


def samples(model) -> dict[str, torch.Tensor]:
    source, text, null = hc.inputs()
    latent = {"samples": source[0].transpose(0, 1).contiguous()}
    node = sampler_node.sample_video(model, [[text, {}]], latent, hc.SEED, 2, *hc.GUIDANCE, "euler", "normal",
                                     negative=[[null, {}]])["samples"]
    return {"sampler": node, "guider": hc.host_path(model)}


def check_partial(files) -> dict:
    model = full_size_model()
    size = model.model_size()
    mm.unload_all_models()
    full = samples(model)
    mm.unload_all_models()
    with free_vram(size // 3):
        partial = samples(model)
        modules = weight_modules(model)  # still loaded, as the host leaves a model after sampling
        offloaded = [n for n, m in modules if hasattr(m, "prev_comfy_cast_weights")]
        loaded = model.loaded_size()
    mm.unload_all_models()
    return {"model_size": size, "loaded": loaded, "budget": size // 3, "weight_modules": len(modules),
            "temporal_modules": sum(is_vidiff(n) for n, _ in modules), "offloaded": len(offloaded),
            "temporal_offloaded": sum(is_vidiff(n) for n in offloaded),
            "finite": all(bool(torch.isfinite(t).all()) for t in full.values()),
            **{f"{k}_rel": hc.rel(partial[k], full[k]) for k in full}}


CHECKS = {"meta": check_meta, "reload": check_reload, "sizes": check_sizes, "partial": check_partial}

if __name__ == "__main__":
    hc.WORK = WORK_DIR
    hc.run_checks(CHECKS, "HOST_MEMORY_CHECKS")
