"""The pack beside the packs users run with it, unmodified, in one real ComfyUI (tests/peer_packs.py):
ComfyUI_IPAdapter_plus (image prompts through the MODEL's cross-attention patches) and ComfyUI-AnimateDiff-Evolved
(its own motion-model injection and sampling). Fixture weights in the released layouts; latents saved by SaveLatent.

The reference for IP-Adapter on a video is the core's own way to run InstructPix2Pix's dual guidance:
InstructPixToPixConditioning + DualCFGGuider + SamplerCustomAdvanced, with AnimateDiff-Evolved's temporal layers.
IPAdapter_plus reads `cond_or_uncond` to give each guidance branch its conditional or unconditional image tokens
and repeats them over the frames (the batch), so VIDiff must hand it the same positions and frames."""

from __future__ import annotations

import copy

import pytest
import torch
from comfy_harness import API_ALL, FRAMES, HEIGHT, INPUT_FILES, MODEL_FILES, PEER_FILES, WIDTH

pytestmark = [pytest.mark.comfyui, pytest.mark.slow]
PARITY = 1e-5
INSTRUCTION = "Apply the style from this image to the video."
SEED, STEPS = 3, 2


class Prompt(dict):
    """An API prompt under construction; add() returns the new node's output 0 as a link."""

    def add(self, class_type: str, **inputs) -> list:
        node_id = str(len(self) + 1)
        self[node_id] = {"class_type": class_type, "inputs": inputs}
        return [node_id, 0]


def _base(p: Prompt, ip_adapter: bool = True) -> dict:
    """The source video, InstructPix2Pix (MODEL, CLIP, VAE), the texts, and the IP-Adapter's files and picture."""
    parts = p.add("GetVideoComponents", video=p.add("LoadVideo", file=INPUT_FILES["video"]))
    ckpt = p.add("CheckpointLoaderSimple", ckpt_name=MODEL_FILES["checkpoints"])
    clip, vae = [ckpt[0], 1], [ckpt[0], 2]
    base = dict(
        frames=parts, ckpt=ckpt, vae=vae, source=p.add("VAEEncode", pixels=parts, vae=vae),
        text=p.add("CLIPTextEncode", clip=clip, text=INSTRUCTION), empty=p.add("CLIPTextEncode", clip=clip, text=""),
        latent=p.add("EmptyLatentImage", width=WIDTH, height=HEIGHT, batch_size=FRAMES))
    if ip_adapter:
        base.update(adapter=p.add("IPAdapterModelLoader", ipadapter_file=PEER_FILES["ipadapter"]),
                    vision=p.add("CLIPVisionLoader", clip_name=PEER_FILES["clip_vision_h"]),
                    picture=p.add("LoadImage", image=INPUT_FILES["style"]))
    return base


def _ip_adapter(p: Prompt, b: dict, model: list, image: list | None = None, batch: bool = False) -> list:
    return p.add("IPAdapterBatch" if batch else "IPAdapterAdvanced", model=model, ipadapter=b["adapter"],
                 image=image or b["picture"], clip_vision=b["vision"], weight=1.0, weight_type="linear",
                 combine_embeds="concat", start_at=0.0, end_at=1.0, embeds_scaling="V only",
                 **({"encode_batch_size": 0} if batch else {}))


def _motion(p: Prompt, model: list) -> list:
    return p.add("VIDiffApplyMotionModule", model=model, motion_module=MODEL_FILES["animatediff_models"],
                 beta_schedule="autoselect")


def _custom(p: Prompt, b: dict, model: list, guider: list, name: str) -> None:
    """SamplerCustomAdvanced with VIDiff's noise layout, euler, the model's own schedule; the latent saved."""
    sample = p.add("SamplerCustomAdvanced", noise=p.add("VIDiffNoise", noise_seed=SEED), guider=guider,
                   sampler=p.add("KSamplerSelect", sampler_name="euler"),
                   sigmas=p.add("BasicScheduler", model=model, scheduler="normal", steps=STEPS, denoise=1.0),
                   latent_image=b["latent"])
    p.add("SaveLatent", samples=sample, filename_prefix=f"peers/{name}")


def _vidiff_guider(p: Prompt, b: dict, model: list, name: str, video_cfg: float = 1.5) -> None:
    guider = p.add("VIDiffGuider", model=model, instruction=b["text"], source=b["source"], video_cfg=video_cfg,
                   text_cfg=7.5, negative=b["empty"])
    _custom(p, b, model, guider, name)


def _vidiff_sampler(p: Prompt, b: dict, model: list, name: str) -> None:
    latent = p.add("VIDiffSampler", model=model, instruction=b["text"], source=b["source"], seed=SEED, steps=STEPS,
                   video_cfg=1.5, text_cfg=7.5, sampler_name="euler", scheduler="normal", negative=b["empty"])
    p.add("SaveLatent", samples=latent, filename_prefix=f"peers/{name}")


def _core_dual_cfg(p: Prompt, b: dict, model: list, name: str) -> None:
    """The core's InstructPix2Pix dual guidance: (video, text), (video, ∅_T), (∅_V, ∅_T) = no concat latent."""
    ip2p = p.add("InstructPixToPixConditioning", positive=b["text"], negative=b["empty"], vae=b["vae"],
                 pixels=b["frames"])
    guider = p.add("DualCFGGuider", model=model, cond1=ip2p, cond2=[ip2p[0], 1], negative=b["empty"],
                   cfg_conds=7.5, cfg_cond2_negative=1.5, style="regular")
    _custom(p, b, model, guider, name)


def _ade(p: Prompt, model: list) -> list:
    return p.add("ADE_AnimateDiffLoaderGen1", model=model, model_name=MODEL_FILES["animatediff_models"],
                 beta_schedule="autoselect")


def _latents(server, result: dict, prompt: dict) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    assert result["status"] == "success", result.get("error") or server.log_text()[-3000:]
    out = {}
    for node_id, node in prompt.items():
        if node["class_type"] == "SaveLatent":
            (item,) = result["history"]["outputs"][node_id]["latents"]
            path = server.workdir / "output" / item["subfolder"] / item["filename"]
            out[node["inputs"]["filename_prefix"].split("/")[1]] = load_file(path)["latent_tensor"]
    return out


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.fixture(scope="module")
def ip_adapter_runs(peer_server):
    """One prompt: the same source and instruction sampled every way the tests compare. AnimateDiff-Evolved's
    graphs come first (the server runs output nodes in order), so VIDiff's MODELs are made after its motion
    modules were put into the shared UNet's blocks and sampled with."""
    p = Prompt()
    b = _base(p)
    _core_dual_cfg(p, b, _ip_adapter(p, b, _ade(p, b["ckpt"])), "ade")
    _core_dual_cfg(p, b, _ip_adapter(p, b, _ade(p, b["ckpt"]), image=b["frames"], batch=True), "ade_frames")
    vidiff = _motion(p, b["ckpt"])
    after = _ip_adapter(p, b, vidiff)  # Load Checkpoint → VIDiff Apply Motion Module → IPAdapter (the template)
    before = _motion(p, _ip_adapter(p, b, b["ckpt"]))  # → IPAdapter → VIDiff Apply Motion Module
    _vidiff_guider(p, b, vidiff, "plain")
    _vidiff_guider(p, b, after, "after")
    _vidiff_guider(p, b, before, "before")
    _vidiff_sampler(p, b, after, "sampler")
    # a picture per frame: the source frames themselves, and the style picture repeated (= one picture)
    _vidiff_guider(p, b, _ip_adapter(p, b, vidiff, image=b["frames"], batch=True), "frames")
    repeated = p.add("RepeatImageBatch", image=b["picture"], amount=FRAMES)
    _vidiff_guider(p, b, _ip_adapter(p, b, vidiff, image=repeated, batch=True), "repeated")
    # s_V = 1: the no-video branch has weight 0 (the core guider would skip it, and IPAdapter_plus then fails)
    _vidiff_guider(p, b, after, "video_cfg_1", video_cfg=1.0)
    _vidiff_guider(p, b, vidiff, "plain_video_cfg_1", video_cfg=1.0)
    return _latents(peer_server, peer_server.run(dict(p), timeout=1800), p)


def test_both_packs_load_beside_vidiff_with_no_error_in_the_log(peer_server):
    log = peer_server.log_text()
    assert "Traceback" not in log and "IMPORT FAILED" not in log, log[-3000:]
    info = peer_server.get("/object_info")
    for node in ("VIDiffSampler", "VIDiffApplyMotionModule", "IPAdapterAdvanced", "IPAdapterBatch",
                 "ADE_AnimateDiffLoaderGen1", "ADE_UseEvolvedSampling"):
        assert node in info, node


def test_ip_adapter_changes_the_result(ip_adapter_runs):
    got = ip_adapter_runs
    assert got["after"].shape == (FRAMES, 4, HEIGHT // 8, WIDTH // 8)
    assert _rel(got["after"], got["plain"]) > 1e-3  # float noise is ~1e-7


def test_ip_adapter_before_or_after_the_motion_module_gives_the_same_latents(ip_adapter_runs):
    assert _rel(ip_adapter_runs["before"], ip_adapter_runs["after"]) < PARITY


def test_vidiff_sampler_and_guider_agree_with_ip_adapter(ip_adapter_runs):
    assert _rel(ip_adapter_runs["sampler"], ip_adapter_runs["after"]) < PARITY


def test_ip_adapter_sees_vidiffs_branches_as_under_the_core_dual_cfg_guider(ip_adapter_runs):
    """AnimateDiff-Evolved's injection + InstructPixToPixConditioning + DualCFGGuider: the same latents, so the
    branches reached IPAdapter_plus in DualCFGGuider's positions (its image tokens per position) and frames."""
    assert _rel(ip_adapter_runs["after"], ip_adapter_runs["ade"]) < PARITY


def test_a_picture_per_frame(ip_adapter_runs):
    got = ip_adapter_runs
    assert _rel(got["frames"], got["after"]) > 1e-3  # the frames prompt differently than the style picture
    assert _rel(got["frames"], got["ade_frames"]) < PARITY  # picture i reaches frame i as under the core guider
    assert _rel(got["repeated"], got["after"]) < PARITY  # the same picture on every frame = one picture


def test_video_cfg_1_with_ip_adapter_runs_and_equals_the_formula(ip_adapter_runs):
    """s_V = 1 drops the no-video branch (weight 0) on a plain MODEL; with IP-Adapter all three run (positions
    kept): the result is still the formula's, and differs from the plain model's."""
    got = ip_adapter_runs
    assert _rel(got["video_cfg_1"], got["plain_video_cfg_1"]) > 1e-3
    assert _rel(got["video_cfg_1"], got["after"]) > 1e-3  # a different s_V, a different video


def test_vidiff_and_animatediff_evolved_graphs_run_one_after_the_other_unchanged(peer_server):
    """A VIDiff graph, an AnimateDiff-Evolved graph, the VIDiff graph again, the AnimateDiff-Evolved one again (the
    server's cached outputs dropped before each but the third, so every node runs): each result equals its first
    run. The third runs on the checkpoint AnimateDiff-Evolved just sampled with, whose UNet blocks hold its motion
    modules while its MODEL is loaded: the VIDiff MODEL made then must not take them in."""
    p = Prompt()
    b = _base(p, ip_adapter=False)
    _core_dual_cfg(p, b, _ade(p, b["ckpt"]), "ade_alone")
    q = Prompt()
    c = _base(q, ip_adapter=False)
    _vidiff_guider(q, c, _motion(q, c["ckpt"]), "vidiff_alone")

    def run(prompt: Prompt, name: str, fresh: bool) -> torch.Tensor:
        if fresh:  # drop cached node outputs (not the loaded models): every node runs again
            peer_server.post("/free", {"free_memory": True, "unload_models": False})
        return _latents(peer_server, peer_server.run(copy.deepcopy(dict(prompt)), timeout=900), prompt)[name]

    vidiff = run(q, "vidiff_alone", fresh=True)
    ade = run(p, "ade_alone", fresh=True)
    vidiff_again = run(q, "vidiff_alone", fresh=False)  # on the checkpoint AnimateDiff-Evolved just sampled
    ade_again = run(p, "ade_alone", fresh=True)
    assert _rel(vidiff_again, vidiff) < PARITY
    assert _rel(ade_again, ade) < PARITY
    assert _rel(vidiff, ade) < 1e-4  # the two packs' temporal layers compute the same (see docs/nodes.md)


@pytest.mark.parametrize("order", ["vidiff_on_ade", "ade_on_vidiff"])
def test_two_motion_stacks_fail_with_one_clear_line(peer_server, order):
    p = Prompt()
    b = _base(p, ip_adapter=False)
    model = _motion(p, _ade(p, b["ckpt"])) if order == "vidiff_on_ade" else _ade(p, _motion(p, b["ckpt"]))
    _vidiff_guider(p, b, model, f"stack_{order}")
    result = peer_server.run(dict(p), timeout=600)
    assert result["status"] == "error", result["status"]
    message = result["error"]["exception_message"]
    assert "already carries an AnimateDiff-Evolved motion model" in message, message
    assert "\n" not in message.strip(), message
    assert message.startswith("model:"), message


def test_the_ip_adapter_template_runs(peer_server):
    """workflows/vidiff_style_ip_adapter.json's API twin, 2 steps: it saves a video of the source's frames."""
    from comfy_harness import video_info

    prompt = copy.deepcopy(API_ALL["style_ip_adapter"])
    for node in prompt.values():
        if node["class_type"] == "VIDiffSampler":
            node["inputs"]["steps"] = STEPS
    result = peer_server.run(prompt, timeout=900)
    assert result["status"] == "success", result.get("error") or peer_server.log_text()[-3000:]
    (saved,) = [i for n in result["history"]["outputs"].values() for i in n.get("images", []) + n.get("videos", [])]
    path = peer_server.workdir / "output" / saved["subfolder"] / saved["filename"]
    assert video_info(path)[:3] == (FRAMES, WIDTH, HEIGHT)


# -- the template in the real frontend (headless Chromium), on the server with IPAdapter_plus ---------------------
TEMPLATE = "vidiff_style_ip_adapter"


@pytest.fixture(scope="module")
def peer_page(peer_server):
    from test_browser import browser_page

    yield from browser_page(peer_server)


def test_the_ip_adapter_template_matches_the_servers_nodes(peer_server):
    from test_comfyui import check_ui_workflow_matches_object_info

    check_ui_workflow_matches_object_info(peer_server, TEMPLATE)


def test_the_ip_adapter_template_converts_to_an_accepted_prompt(peer_server, peer_page):
    from test_browser import check_workflow_converts_to_an_accepted_prompt

    check_workflow_converts_to_an_accepted_prompt(peer_server, peer_page, TEMPLATE)


def test_the_ip_adapter_template_opens_whole_and_tidy(peer_page):
    from test_templates_browser import check_template_opens_whole_and_tidy

    check_template_opens_whole_and_tidy(peer_page, TEMPLATE)
    note = peer_page.evaluate("() => app.graph._nodes.filter((n) => n.type === 'Note').map((n) => n.widgets[0].value)")
    assert len(note) == 1 and "ComfyUI_IPAdapter_plus" in note[0] and PEER_FILES["ipadapter"] in note[0], note


def test_missing_ip_adapter_files_are_offered_for_download(peer_page, tmp_path):
    """On a ComfyUI with IPAdapter_plus but none of the template's files, the Missing Models dialog lists the
    IP-Adapter and its image encoder (and InstructPix2Pix, the motion module), each with a Download."""
    from comfy_harness import ComfyServer
    from peer_packs import custom_nodes_with
    from test_templates_browser import check_missing_models_dialog

    from comfy_harness import UI

    listed = {m["name"]: m for n in UI[TEMPLATE]["nodes"] for m in n["properties"].get("models", [])}
    assert {PEER_FILES["ipadapter"], PEER_FILES["clip_vision_h"]} <= set(listed), listed
    assert listed[PEER_FILES["ipadapter"]]["directory"] == "ipadapter"
    bare = ComfyServer(tmp_path / "bare", custom_nodes=custom_nodes_with(tmp_path / "bare", "ipadapter")).start()
    try:
        check_missing_models_dialog(peer_page, bare, (TEMPLATE,))
    finally:
        bare.stop()
