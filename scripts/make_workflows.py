"""Write the example workflows, API format (workflows/api/) and UI format (workflows/), for every task.

    .venv/bin/python scripts/make_workflows.py [--url http://127.0.0.1:8188]

The graphs are written here once, in API form; the UI form is derived from the server's /object_info
(widget order, socket types), so start ComfyUI with this pack (or let the script start the test one), and
laid out by workflow_ui.py (groups per stage, a saved view that shows the whole graph, instruction presets).
Model file names are the ones the README tells users to download.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "scripts")]

from comfy_harness import INPUT_FILES, MODEL_FILES, PEER_FILES  # noqa: E402
from workflow_ui import to_ui  # noqa: E402


class Graph:
    """An API-format prompt under construction: node id -> {"class_type", "inputs", "_meta"}. A bypassed node (an
    optional slot such as a LoRA loader) is in the UI form, bypassed, and left out of the API form, its consumers
    linked to its first input instead."""

    def __init__(self, note: str = ""):
        self.nodes: dict[str, dict] = {}
        self.bypassed: set[str] = set()
        self.note = note  # shown as a Note above the graph in the UI form (what the template needs)

    def add(self, class_type: str, title: str | None = None, *, bypass: str | None = None, **inputs) -> str:
        """`bypass`: the input whose link passes through while the node is bypassed."""
        node_id = str(len(self.nodes) + 1)
        self.nodes[node_id] = {"class_type": class_type, "inputs": inputs, "_meta": {"title": title or class_type}}
        if bypass:
            self.bypassed.add(node_id)
            self.nodes[node_id]["_meta"]["bypass"] = bypass
        return node_id

    def api(self) -> dict:
        """The API form: bypassed nodes removed, their consumers linked through."""
        def through(link):
            while isinstance(link, list) and link[0] in self.bypassed:
                node = self.nodes[link[0]]
                link = node["inputs"][node["_meta"]["bypass"]]
            return link
        return {k: {**n, "inputs": {name: through(v) for name, v in n["inputs"].items()}}
                for k, n in self.nodes.items() if k not in self.bypassed}


def full_size_model(g: Graph, lora_slot: bool = False) -> tuple[list, list, list]:
    """Load Checkpoint (InstructPix2Pix) → [LoRA, bypassed] → VIDiff Apply Motion Module: (MODEL, CLIP, VAE)."""
    checkpoint = g.add("CheckpointLoaderSimple", "InstructPix2Pix", ckpt_name=MODEL_FILES["checkpoints"])
    model = [checkpoint, 0]
    if lora_slot:  # shown bypassed: pick a LoRA and un-bypass it (Ctrl+B) to style the spatial layers
        model = [g.add("LoraLoaderModelOnly", "Optional LoRA (bypassed)", bypass="model", model=model,
                       lora_name=MODEL_FILES["loras"], strength_model=1.0), 0]
    motion = g.add("VIDiffApplyMotionModule", model=model, motion_module=MODEL_FILES["animatediff_models"],
                   beta_schedule="autoselect")
    return [motion, 0], [checkpoint, 1], [checkpoint, 2]


def video_to_video(task: str, instruction: str, *, model: str = "parts", image_instruction: bool = False,
                   holes: bool = False, segmentation_color: str | None = None, long_video: dict | None = None,
                   save: str = "video", steps: int = 20, lora_slot: bool = False, ip_adapter: dict | None = None,
                   note: str = "") -> Graph:
    """LoadVideo → GetVideoComponents → VAEEncode → VIDiff → VAEDecode → CreateVideo → SaveVideo.
    `ip_adapter`: IPAdapter Advanced's settings; the style picture then prompts the model through IPAdapter_plus."""
    g = Graph(note)
    video = g.add("LoadVideo", "Source video", file=INPUT_FILES["video"])
    parts = g.add("GetVideoComponents", video=[video, 0])
    frames = [parts, 0]
    if holes:
        mask = g.add("LoadImageMask", "Holes (white = missing)", image=INPUT_FILES["mask"], channel="red")
        frames = [g.add("VIDiffCutHoles", images=frames, mask=[mask, 0], fill="black"), 0]
    if model == "loader":  # a VIDiff checkpoint (it has the image MLP) with the SD-1.5 VAE and CLIP-L
        vae = [g.add("VAELoader", vae_name=MODEL_FILES["vae"]), 0]
        clip = [g.add("CLIPLoader", clip_name=MODEL_FILES["text_encoders"], type="stable_diffusion",
                      device="default"), 0]
        vidiff = [g.add("VIDiffModelLoader", model_name=MODEL_FILES["vidiff"], weight_dtype="auto",
                        beta_schedule="autoselect"), 0]
    else:  # InstructPix2Pix's one file gives MODEL, CLIP and VAE; the motion module adds the temporal layers
        vidiff, clip, vae = full_size_model(g, lora_slot=lora_slot)
    if ip_adapter:  # IPAdapter_plus on VIDiff's MODEL: its cross-attention patch gives every frame the picture
        adapter = g.add("IPAdapterModelLoader", "IP-Adapter (SD-1.5)", ipadapter_file=PEER_FILES["ipadapter"])
        vision = g.add("CLIPVisionLoader", "Image encoder (ViT-H)", clip_name=PEER_FILES["clip_vision_h"])
        style = g.add("LoadImage", "Style picture", image=INPUT_FILES["style"])
        vidiff = [g.add("IPAdapterAdvanced", "IP-Adapter: the picture as a prompt", model=vidiff, ipadapter=[adapter, 0],
                        image=[style, 0], clip_vision=[vision, 0], **ip_adapter), 0]
    source = g.add("VAEEncode", pixels=frames, vae=vae)
    encode = dict(model=vidiff, clip=clip, instruction=instruction)
    if image_instruction:
        style = g.add("LoadImage", "Style image", image=INPUT_FILES["style"])
        vision = g.add("CLIPVisionLoader", clip_name=MODEL_FILES["clip_vision"])
        encode["image_instruction"] = [g.add("CLIPVisionEncode", clip_vision=[vision, 0], image=[style, 0],
                                             crop="center"), 0]
    instruction_node = g.add("VIDiffInstructionEncode", **encode)
    sampler = dict(model=vidiff, instruction=[instruction_node, 0], source=[source, 0], seed=0,
                   steps=steps, video_cfg=1.5, text_cfg=7.5, sampler_name="euler", scheduler="normal")
    if long_video:
        sampler["long_video"] = [g.add("VIDiffLongVideo", **long_video), 0]
    result = g.add("VIDiffSampler", **sampler)
    images = g.add("VAEDecode", samples=[result, 0], vae=vae)
    prefix = f"VIDiff/{task}"
    if save == "webp":
        g.add("SaveAnimatedWEBP", images=[images, 0], filename_prefix=prefix, fps=8.0, lossless=False, quality=90,
              method="default")
    else:
        out = g.add("CreateVideo", images=[images, 0], fps=[parts, 2], audio=[parts, 1])
        g.add("SaveVideo", video=[out, 0], filename_prefix=prefix, format="auto", codec="auto")
    if segmentation_color:
        mask = g.add("VIDiffMaskFromSegmentation", source=frames, result=[images, 0], color=segmentation_color,
                     threshold=0.25)
        mask_video = g.add("CreateVideo", images=[g.add("MaskToImage", mask=[mask, 0]), 0], fps=[parts, 2])
        g.add("SaveVideo", "Save mask", video=[mask_video, 0], filename_prefix=prefix + "_mask", format="auto",
              codec="auto")
    return g


def compare_settings(task: str, instruction: str, settings: dict[str, dict], steps: int = 20) -> Graph:
    """One source translated with each of `settings` (sampler inputs), each result saved and scored by
    VIDiffVideoMetrics against the source: comparing guidance scales, samplers or seeds in one graph."""
    g = Graph()
    video = g.add("LoadVideo", "Source video", file=INPUT_FILES["video"])
    parts = g.add("GetVideoComponents", video=[video, 0])
    vidiff, clip, vae = full_size_model(g)
    source = g.add("VAEEncode", pixels=[parts, 0], vae=vae)
    instruction_node = g.add("VIDiffInstructionEncode", model=vidiff, clip=clip, instruction=instruction)
    for label, changes in settings.items():
        sampler = dict(model=vidiff, instruction=[instruction_node, 0], source=[source, 0], seed=0,
                       steps=steps, video_cfg=1.5, text_cfg=7.5, sampler_name="euler", scheduler="normal")
        result = g.add("VIDiffSampler", f"Sampler ({label})", **{**sampler, **changes})
        images = g.add("VAEDecode", samples=[result, 0], vae=vae)
        g.add("VIDiffVideoMetrics", f"Metrics ({label}) against the source", prediction=[images, 0],
              reference=[parts, 0], warping_error=True)
        out = g.add("CreateVideo", images=[images, 0], fps=[parts, 2], audio=[parts, 1])
        g.add("SaveVideo", f"Save ({label})", video=[out, 0], filename_prefix=f"VIDiff/{task}_{label.replace(' ', '_')}",
              format="auto", codec="auto")
    return g


MINI = {"vae": "vidiff_mini_vae.safetensors", "clip": "vidiff_mini_clip_l.safetensors",
        "vidiff": "vidiff_mini.safetensors", "clip_file": "vidiff_mini_sample.webp"}
MINI_RESTORATIONS = {  # task -> (VIDiffDegradeVideo's degradation, the instruction, a preset the model was trained on)
    "recolor": ("grayscale", "Convert the grayscale clip into a colorful masterpiece"),
    "dehaze": ("haze", "Remove the applied haze from this video"),
    "deblur": ("blur", "Enhance the clarity of this blurry video"),
    "inpaint": ("holes", "Repair the video with missing parts"),
}


# vidiff-mini's guidance: none. Measured on its first 4 validation clips (bench/mini_quality.py --clips 4
# --no-styles --long-frames 0), s_V = s_T = 1 against the paper's 1.5 / 7.5: recolor 15.37 / 13.21 dB, dehaze
# 14.44 / 9.21, deblur 18.26 / 16.95, inpaint 14.73 / 13.74 (the dropped-condition branches are undertrained),
# and one UNet pass per step instead of three.
MINI_GUIDANCE = {"video_cfg": 1.0, "text_cfg": 1.0}
# Styles: the instruction alone picks the style, so it is guided. Same clips: the output nearest its own style's
# target on 7 of 16 clip × style pairs at s_T 1 (sketch asked, never sketch), 12 of 16 at s_T 7.5.
MINI_STYLE_GUIDANCE = {"video_cfg": 1.0, "text_cfg": 7.5}


def mini_graph(task: str, instruction: str, *, degradation: str | None = None, frames: int = 16,
               long_video: dict | None = None, guidance: dict = MINI_GUIDANCE) -> Graph:
    """vidiff-mini on the pack's sample clip, runnable on a CPU as it is: the shipped model, autoencoder and
    text encoder. With a degradation: degrade → restore → finish → score, the metrics shown on the node for the
    degraded input, the model's output alone and the saved result, all against the clean clip. Finishing gives
    the decoded output the input's detail the autoencoder lost (VIDiffDetailTransfer); for holes, the output
    is pasted into them, the known pixels kept (the host's ImageCompositeMasked); for gray input,
    the output's colour is put on the input's brightness (VIDiffKeepLuminance)."""
    g = Graph()
    clip = g.add("VIDiffLoadSampleClip", "Sample clip (validation split)", clip=MINI["clip_file"], frames=frames)
    clean = [clip, 0]
    frames_in = clean
    if degradation:
        frames_in = [g.add("VIDiffDegradeVideo", f"Degrade ({degradation})", images=clean, degradation=degradation,
                           seed=0), 0]
    vae = g.add("VAELoader", "vidiff-mini autoencoder", vae_name=MINI["vae"])
    source = g.add("VAEEncode", pixels=frames_in, vae=[vae, 0])
    text = g.add("CLIPLoader", "vidiff-mini text encoder", clip_name=MINI["clip"], type="stable_diffusion",
                 device="default")
    vidiff = g.add("VIDiffModelLoader", "vidiff-mini", model_name=MINI["vidiff"], weight_dtype="auto",
                   beta_schedule="autoselect")
    instruction_node = g.add("VIDiffInstructionEncode", model=[vidiff, 0], clip=[text, 0], instruction=instruction)
    sampler = dict(model=[vidiff, 0], instruction=[instruction_node, 0], source=[source, 0], seed=0,
                   steps=20, **guidance, sampler_name="euler", scheduler="normal")
    if long_video:
        sampler["long_video"] = [g.add("VIDiffLongVideo", **long_video), 0]
    result = g.add("VIDiffSampler", **sampler)
    images = [g.add("VAEDecode", samples=[result, 0], vae=[vae, 0]), 0]
    if degradation:
        model_alone = images
        if degradation == "holes":  # the known pixels are kept; the model fills the holes
            images = [g.add("ImageCompositeMasked", "The model's fill in the holes", destination=frames_in,
                            source=model_alone, x=0, y=0, resize_source=False, mask=[frames_in[0], 1]), 0]
        elif degradation == "grayscale":  # the gray input holds the brightness exactly; the model adds colour
            images = [g.add("VIDiffKeepLuminance", source=frames_in, result=model_alone), 0]
        else:  # the small autoencoder blurs what it decodes; the detail it lost from the input is added back
            round_trip = g.add("VAEDecode", "Autoencoder round trip of the input", samples=[source, 0], vae=[vae, 0])
            images = [g.add("VIDiffDetailTransfer", source=frames_in, result=model_alone,
                            source_round_trip=[round_trip, 0], strength=1.0, mask_grow=4), 0]
        g.add("VIDiffVideoMetrics", "Degraded input vs clean", prediction=frames_in, reference=clean,
              warping_error=True)
        g.add("VIDiffVideoMetrics", "Model alone vs clean", prediction=model_alone, reference=clean,
              warping_error=True)
        g.add("VIDiffVideoMetrics", "Result vs clean", prediction=images, reference=clean, warping_error=True)
        g.add("SaveAnimatedWEBP", "Save degraded input", images=frames_in, filename_prefix=f"VIDiff/mini_{task}_input",
              fps=[clip, 1], lossless=False, quality=90, method="default")
    g.add("SaveAnimatedWEBP", "Save result", images=images, filename_prefix=f"VIDiff/mini_{task}", fps=[clip, 1],
          lossless=False, quality=90, method="default")
    return g


VHS_URL = "https://github.com/Kosinkadink/ComfyUI-VideoHelperSuite"
VHS_NOTE = (f"Needs ComfyUI-VideoHelperSuite (custom node: {VHS_URL}). Videos of any length in bounded memory, "
            "frames_per_batch at a time: Meta Batch Manager hands Load Video's frames out frames_per_batch at a time "
            "and queues the workflow again until the video ends; VIDiff Sampler, linked to the same manager, carries "
            "its long-video state from batch to batch; Video Combine appends every batch to one mp4 with the source's "
            "audio and frame rate. Queue once.")
MINI_BATCHED_VIDEO = "vidiff_mini_sample_hazy.mp4"  # written into ComfyUI's input folder by the pack (mini_files.py)


def batched_long_video(task: str, instruction: str, *, mini: bool, long_video: dict, frames_per_batch: int = 40,
                       note: str = "") -> Graph:
    """A video of any length under VideoHelperSuite's Meta Batch Manager: Meta Batch Manager → Load Video
    (meta_batch) → VAEEncode → VIDiff Sampler (long_video, meta_batch) → VAEDecode → Video Combine (h264 mp4,
    meta_batch, the loaded video's audio and frame rate). vidiff-mini (`mini`, 128 × 128 frames, finished as the
    mini dehaze template is: VIDiffDetailTransfer) or the full-size model."""
    # Video Combine's h264 quality: VideoHelperSuite's default crf 19 for the full-size model; crf 12 for vidiff-mini's
    # 128 × 128 frames (as the pack encodes the sample clip), where 19 visibly costs detail: on the sample clip, SSIM
    # against the clean clip 0.670 at crf 19, 0.688 at crf 12 (the hazy input: 0.683; make_template_cards.py, 16 frames
    # per batch; at 40, crf 12: 0.687).
    # 40 frames per batch = overlap + 3 × (clip_length − overlap) for clips of 16 sharing 4: batches end where one
    # run's clips end, so the video is one run's (docs/sampling.md), and each frame is sampled 1.2 times on average
    # (16 per batch: 2 clips for every 16 new frames, 2.0 times).
    g = Graph(note)
    manager = [g.add("VHS_BatchManager", "Meta Batch Manager", frames_per_batch=frames_per_batch), 0]
    side = 128 if mini else 0  # vidiff-mini's frame size (Load Video crops to the centre and resizes); 0: as it is
    video = MINI_BATCHED_VIDEO if mini else INPUT_FILES["video"]
    load = g.add("VHS_LoadVideo", "Source video (any length)", video=video, force_rate=0, custom_width=side,
                 custom_height=side, frame_load_cap=0, skip_first_frames=0, select_every_nth=1, meta_batch=manager,
                 format="AnimateDiff")  # VHS's default; under "None" its frontend turns a custom size into NaN
    if mini:
        vae = [g.add("VAELoader", "vidiff-mini autoencoder", vae_name=MINI["vae"]), 0]
        clip = [g.add("CLIPLoader", "vidiff-mini text encoder", clip_name=MINI["clip"], type="stable_diffusion",
                      device="default"), 0]
        vidiff = [g.add("VIDiffModelLoader", "vidiff-mini", model_name=MINI["vidiff"], weight_dtype="auto",
                        beta_schedule="autoselect"), 0]
        guidance = MINI_GUIDANCE
    else:
        vidiff, clip, vae = full_size_model(g)
        guidance = {"video_cfg": 1.5, "text_cfg": 7.5}
    source = g.add("VAEEncode", pixels=[load, 0], vae=vae)
    instruction_node = g.add("VIDiffInstructionEncode", model=vidiff, clip=clip, instruction=instruction)
    long_video_node = g.add("VIDiffLongVideo", **long_video)
    result = g.add("VIDiffSampler", model=vidiff, instruction=[instruction_node, 0], source=[source, 0], seed=0,
                   steps=20, **guidance, sampler_name="euler", scheduler="normal", long_video=[long_video_node, 0],
                   meta_batch=manager)
    images = [g.add("VAEDecode", samples=[result, 0], vae=vae), 0]
    if mini:  # as vidiff_mini_dehaze finishes: the detail the small autoencoder lost from the input, added back
        round_trip = g.add("VAEDecode", "Autoencoder round trip of the input", samples=[source, 0], vae=vae)
        images = [g.add("VIDiffDetailTransfer", source=[load, 0], result=images, source_round_trip=[round_trip, 0],
                        strength=1.0, mask_grow=4), 0]
    info = g.add("VHS_VideoInfoLoaded", "Loaded video's frame rate", video_info=[load, 3])
    g.add("VHS_VideoCombine", "Save video (every batch appended)", images=images, frame_rate=[info, 0],
          loop_count=0, filename_prefix=f"VIDiff/{task}", format="video/h264-mp4", pingpong=False, save_output=True,
          audio=[load, 2], meta_batch=manager, pix_fmt="yuv420p", crf=12 if mini else 19, save_metadata=True,
          trim_to_audio=False)
    return g


def mini_workflows() -> dict[str, Graph]:
    """vidiff_mini_<task>: every task the shipped mini model was trained on, on the shipped sample clip."""
    from vidiff_model.mini.styles import STYLES

    out = {f"mini_{task}": mini_graph(task, text, degradation=d) for task, (d, text) in MINI_RESTORATIONS.items()}
    for name, style in STYLES.items():
        out[f"mini_style_{name}"] = mini_graph(f"style_{name}", style.templates[0], guidance=MINI_STYLE_GUIDANCE)
    out["mini_long_video"] = mini_graph(
        "long_video", MINI_RESTORATIONS["recolor"][1], degradation="grayscale", frames=0,
        long_video=dict(clip_length=16, overlap=4, mode="autoregressive", weighting="pyramid"))
    out["mini_long_video_batched"] = batched_long_video(
        "mini_long_video_batched", MINI_RESTORATIONS["dehaze"][1], mini=True,
        long_video=dict(clip_length=16, overlap=4, mode="autoregressive", weighting="pyramid"),
        note=VHS_NOTE + f" Runs as it is on {MINI_BATCHED_VIDEO}, the pack's sample clip hazed, which the pack "
                        "writes into ComfyUI's input folder; choose or upload your own hazy video in Load Video (it "
                        "is cropped to the centre and resized to 128 × 128, vidiff-mini's size).")
    return out


EXPERIMENTAL = ROOT / "workflows" / "experimental"  # runnable and tested, not in the template browser
EXPERIMENTAL_FULL_SIZE = {"style_image"}  # needs a file nobody can download (a trained image MLP)
# IP-Adapter for a style picture: IPAdapter_plus's defaults, full weight over all steps and layers.
IP_ADAPTER_SETTINGS = dict(weight=1.0, weight_type="linear", combine_embeds="concat", start_at=0.0, end_at=1.0,
                           embeds_scaling="V only")
CARDS = ROOT / "bench" / "results" / "template_cards.json"


def offered_minis() -> set[str]:
    """The vidiff-mini templates the template browser offers: those whose result on the sample clip is closer to
    the task's target than their input, as scripts/make_template_cards.py measured (its criterion); the others
    go to workflows/experimental/ until a model does them."""
    return {name for name, r in json.loads(CARDS.read_text())["templates"].items() if r["offered"]}


def workflows() -> dict[str, Graph]:
    """Every task, with instructions in the paper's phrasing (the mini ones first)."""
    return {
        **mini_workflows(),
        "recolor": video_to_video("recolor", "Convert the grayscale clip into a colorful masterpiece", lora_slot=True),
        "dehaze": video_to_video("dehaze", "Remove the applied haze from this video"),
        "deblur": video_to_video("deblur", "Enhance the clarity of this blurry video"),
        "inpaint": video_to_video("inpaint", "Repair the video with missing parts", holes=True),
        "segmentation": video_to_video(
            "segmentation", "Mark the pixels of the girl riding the horse in Red and leave the rest unchanged",
            segmentation_color="red"),
        "style_text": video_to_video("style_text", "Turn the video to Sketch Style."),
        "style_ip_adapter": video_to_video(
            "style_ip_adapter", "Apply the style from this image to the video.", ip_adapter=IP_ADAPTER_SETTINGS,
            note="Needs ComfyUI_IPAdapter_plus (custom node) and two files besides InstructPix2Pix and the motion "
                 "module: models/ipadapter/ip-adapter_sd15.safetensors and models/clip_vision/"
                 "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors (the Missing Models dialog downloads them). "
                 "Load the style picture below; one picture styles every frame. For a picture per frame, use "
                 "IPAdapter Batch (the batch's length = the video's frames)."),
        "style_image": video_to_video(
            "style_image", "Apply the style from this image to the video.", model="loader", image_instruction=True,
            note="Experimental: needs models/vidiff/vidiff_sd15.safetensors, a VIDiff checkpoint with a trained "
                 "image-instruction MLP. No such file is published: build one with `python -m vidiff_model build "
                 "... --image-tokens 4` and train it (docs/model_files.md, docs/training.md). For pictures today, "
                 "use vidiff_style_ip_adapter."),
        "long_video": video_to_video("long_video", "Transform the video to Watercolor Style.",
                                     long_video=dict(clip_length=16, overlap=4, mode="overlap_guided",
                                                     weighting="pyramid"), save="webp"),
        "long_video_batched": batched_long_video(
            "long_video_batched", "Transform the video to Watercolor Style.", mini=False,
            long_video=dict(clip_length=16, overlap=4, mode="overlap_guided", weighting="pyramid"),
            note=VHS_NOTE + " Needs InstructPix2Pix and the AnimateDiff v2 motion module (the Missing Models dialog "
                            "downloads them); choose or upload your video in Load Video."),
        "compare_guidance": compare_settings(
            "compare_guidance", "Remove the applied haze from this video",
            {"video_cfg 1.5": {"video_cfg": 1.5}, "video_cfg 1.0": {"video_cfg": 1.0}}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running ComfyUI with this pack (default: start the test server)")
    args = parser.parse_args()
    server = None
    if args.url:
        url = args.url
    else:
        from comfy_harness import ComfyServer

        from peer_packs import custom_nodes_with

        work = Path(tempfile.mkdtemp(prefix="vidiff_make_workflows_"))
        # the peer packs some templates use (IPAdapter_plus, VideoHelperSuite), for their nodes' inputs
        server = ComfyServer(work, custom_nodes=custom_nodes_with(work, "ipadapter", "videohelpersuite")).start()
        url = server.url
    try:
        with urllib.request.urlopen(url + "/object_info", timeout=60) as r:
            object_info = json.loads(r.read())
    finally:
        if server:
            server.stop()
            shutil.rmtree(server.workdir, ignore_errors=True)
    offered = offered_minis()
    for task, graph in workflows().items():
        experimental = task in EXPERIMENTAL_FULL_SIZE or (task.startswith("mini_") and task not in offered)
        folder = EXPERIMENTAL if experimental else ROOT / "workflows"
        for stale in (ROOT / "workflows", EXPERIMENTAL):  # a template that changed side leaves no copy behind
            if stale != folder:
                (stale / "api" / f"{task}.json").unlink(missing_ok=True)
                (stale / f"vidiff_{task}.json").unlink(missing_ok=True)
        (folder / "api").mkdir(parents=True, exist_ok=True)
        (folder / "api" / f"{task}.json").write_text(json.dumps(graph.api(), indent=2) + "\n")
        ui = to_ui(graph.nodes, object_info, bypassed=graph.bypassed, note=graph.note)
        (folder / f"vidiff_{task}.json").write_text(json.dumps(ui, indent=2) + "\n")
        print(f"{folder.relative_to(ROOT)}/vidiff_{task}.json, {folder.relative_to(ROOT)}/api/{task}.json")


if __name__ == "__main__":
    main()
