"""Template cards and the offer check: which vidiff-mini templates the template browser offers, and the pictures.

    .venv/bin/python scripts/make_template_cards.py [--url http://127.0.0.1:8188] [--only NAME ...]

1. Runs every vidiff-mini template as it ships (workflows/api/mini_*.json and workflows/experimental/api/), through
   a real ComfyUI (the test server, or --url), on the pack's sample clip, and downloads what it saved.
2. The offer criterion, measured on that run: a template visibly does its task when its saved result is closer
   to the task's target than the template's input is, in PSNR by at least OFFER_MARGIN_DB and in SSIM. Target and
   input: the clean clip and the degraded input for the restorations; the style's own target (the classical
   filter the model was trained towards, `mini.styles`) and the clip for the styles. Written to
   bench/results/template_cards.json; scripts/make_workflows.py offers a template (workflows/) or keeps it in
   workflows/experimental/ by that file, and a test holds the two together.
3. Cards: workflows/vidiff_<name>.jpg, what ComfyUI 0.3.75's template browser shows for a custom node's template
   (GET /api/workflow_templates/<pack>/<name>.jpg): a strip of input frames over the same result frames for the
   mini templates, a picture of the task (its input and what it asks for) for the full-size ones, which need
   model files this script does not have. Also docs/media/vidiff_mini_demo.webp, the README's picture:
   input | result of the offered restorations, animated.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import torch  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from vidiff_model.metrics.distortion import mean_finite, psnr_per_frame, ssim_per_frame  # noqa: E402
from vidiff_model.mini import SAMPLE_CLIP  # noqa: E402
from vidiff_model.remote.templates import template  # noqa: E402
from vidiff_model.video_io import read_video  # noqa: E402

OFFER_MARGIN_DB = 1.0
RESULTS = ROOT / "bench" / "results" / "template_cards.json"
DEMO = ROOT / "docs" / "media" / "vidiff_mini_demo.webp"
DOWNLOADS = ROOT / ".cache" / "template_cards"  # each run's saved files, so --redraw needs no model run
# A card is square: the browser (comfyui-frontend-package 1.32.9) shows it in a square box, `object-contain` up to
# 256 px high, and crops whatever is taller than wide (a 480 × 544 card lost its title band's top at 196 px wide).
CARD = 480
BAND = 96  # the title and the badge (what the template needs), over 2 × 2 frames
TILE_W, TILE_H = CARD // 2, (CARD - BAND) // 2  # a frame, centre-cropped to 5:4
BADGE_COLOURS = {True: (31, 122, 58), False: (138, 90, 0)}  # runs on CPU: green; needs downloads and a GPU: amber
DEMO_TILE = 128


def mini_workflows() -> dict[str, Path]:
    """name -> API-format file of every vidiff-mini template, offered or experimental."""
    paths = [*(ROOT / "workflows" / "api").glob("mini_*.json"),
             *(ROOT / "workflows" / "experimental" / "api").glob("mini_*.json")]
    return {p.stem: p for p in sorted(paths)}


def node_of(prompt: dict, class_type: str) -> dict | None:
    return next((n for n in prompt.values() if n["class_type"] == class_type), None)


def target_and_input(prompt: dict, clean: torch.Tensor, saved: dict[str, torch.Tensor]):
    """(target, input, what) of a mini template's run: `saved` maps the save nodes' titles to their frames (and
    "Input video" to the input video of a Meta Batch template, the sample clip hazed by the pack)."""
    degrade = node_of(prompt, "VIDiffDegradeVideo")
    if "Input video" in saved:
        video = node_of(prompt, "VHS_LoadVideo")["inputs"]["video"]
        return clean, saved["Input video"], f"clean clip; input: haze ({video})"
    if degrade:
        return clean, saved["Save degraded input"], f"clean clip; input: {degrade['inputs']['degradation']}"
    from vidiff_model.mini.styles import STYLES, style_target

    instruction = node_of(prompt, "VIDiffInstructionEncode")["inputs"]["instruction"]
    name = next(s for s, st in STYLES.items() if instruction in st.templates)
    return style_target(clean, name), clean, f"the {name} filter of the clip; input: the clip"


def score(pred: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    """PSNR and SSIM of (F, H, W, 3) frames, averaged over frames (the metrics nodes' definitions)."""
    return {"psnr": mean_finite(psnr_per_frame(pred, ref)), "ssim": mean_finite(ssim_per_frame(pred, ref))}


def saved_frames(prompt: dict, folder: Path) -> dict[str, torch.Tensor]:
    """The frames each SaveAnimatedWEBP node of a finished run wrote (downloaded into `folder`), by node title; for a
    Meta Batch template (VideoHelperSuite), its one mp4 as "Save result" and its input video as "Input video"."""
    if node_of(prompt, "VHS_BatchManager"):
        return {"Save result": read_video(sorted((folder / "output").rglob("*.mp4"))[-1]),
                "Input video": read_video(folder / "input" / node_of(prompt, "VHS_LoadVideo")["inputs"]["video"])}
    saved = {}
    for node in prompt.values():
        if node["class_type"] == "SaveAnimatedWEBP":
            prefix = Path(node["inputs"]["filename_prefix"]).name
            files = sorted(f for f in folder.rglob("*.webp") if re.fullmatch(re.escape(prefix) + r"_\d+_\.webp", f.name))
            saved[node["_meta"]["title"]] = read_video(files[-1])
    return saved


def for_cards(prompt: dict) -> dict:
    """The template with its files saved apart from a user's (cards/ instead of VIDiff/)."""
    prompt = json.loads(json.dumps(prompt))
    for node in prompt.values():
        if "filename_prefix" in node["inputs"]:
            node["inputs"]["filename_prefix"] = node["inputs"]["filename_prefix"].replace("VIDiff/", "cards/")
    return prompt


def check(name: str, prompt: dict, folder: Path) -> tuple[dict, tuple[torch.Tensor, torch.Tensor]]:
    """The offer criterion on one finished run: (record, (input, result) frames)."""
    saved = saved_frames(prompt, folder)
    out = saved["Save result"]
    target, inp, what = target_and_input(prompt, read_video(SAMPLE_CLIP)[:len(out)], saved)
    got, before = score(out, target), score(inp, target)
    offered = got["psnr"] >= before["psnr"] + OFFER_MARGIN_DB and got["ssim"] > before["ssim"]
    record = {"target": what, "input": before, "result": got, "offered": offered, "frames": len(out)}
    print(f"{name}: input {before['psnr']:.2f} dB / {before['ssim']:.3f}, result {got['psnr']:.2f} dB / "
          f"{got['ssim']:.3f} -> {'offered' if offered else 'experimental'}", flush=True)
    return record, (inp, out)


def run_meta_batch(client, prompt: dict, folder: Path, timeout: float = 3600) -> float:
    """Runs a template under VideoHelperSuite's Meta Batch Manager, which queues it again per batch server-side:
    waits for the queue to empty, downloads Video Combine's one file (into folder/output) and the input video
    (folder/input); the seconds taken."""
    import time

    start = time.monotonic()
    before = set(client.get_json("/history"))
    client.queue(prompt)
    while time.monotonic() - start < timeout:
        time.sleep(1.0)
        queue = client.get_json("/queue")
        if not queue.get("queue_running") and not queue.get("queue_pending"):
            break
    else:
        raise TimeoutError(f"the Meta Batch run did not end in {timeout} s")
    seconds = round(time.monotonic() - start, 1)
    history = client.get_json("/history")
    entries = [history[k] for k in history if k not in before]
    for entry in entries:
        if entry["status"].get("status_str") != "success":
            raise RuntimeError(f"a batch failed: {entry['status']}")
    files = [item for entry in entries for output in entry.get("outputs", {}).values()
             for item in output.get("gifs", []) if item.get("format", "").startswith("video/")]
    client.download(files[-1], folder / "output")  # the last batch lists the whole file
    client.download({"filename": node_of(prompt, "VHS_LoadVideo")["inputs"]["video"], "type": "input"},
                    folder / "input")
    return seconds


def run_minis(url: str | None, only: list[str]) -> tuple[dict, dict]:
    """Runs each mini template (url None: only reads the last run's files); its check record and frames."""
    from vidiff_model.remote import ComfyClient

    client = ComfyClient(url, timeout=600) if url else None
    records, frames = {}, {}
    for name, path in mini_workflows().items():
        if only and name not in only:
            continue
        prompt = for_cards(json.loads(path.read_text()))
        folder = DOWNLOADS / name
        extra = {}
        if client and node_of(prompt, "VHS_BatchManager"):
            shutil.rmtree(folder, ignore_errors=True)
            extra = {"seconds": run_meta_batch(client, prompt, folder)}
        elif client:
            shutil.rmtree(folder, ignore_errors=True)
            result = client.run(prompt, folder)
            extra = {"seconds": round(result.seconds, 1), "metrics_nodes": result.texts}
        elif not folder.is_dir():
            continue
        records[name], frames[name] = check(name, prompt, folder)
        records[name].update(extra)
    return records, frames


# -- pictures ----------------------------------------------------------------------------------------------------
def to_image(frame: torch.Tensor, side: int = DEMO_TILE, height: int | None = None) -> Image.Image:
    """A frame at side × side, or side × height centre-cropped from it."""
    image = Image.fromarray((frame.clamp(0, 1) * 255).round().byte().numpy()).resize((side, side), Image.LANCZOS)
    top = (side - (height or side)) // 2
    return image.crop((0, top, side, top + (height or side)))


def label(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, size: int = 20) -> None:
    font = ImageFont.load_default(size=size)
    box = draw.textbbox(xy, text, font=font)
    draw.rectangle((box[0] - 4, box[1] - 3, box[2] + 4, box[3] + 3), fill=(0, 0, 0))
    draw.text(xy, text, fill=(255, 255, 255), font=font)


def card(name: str, rows: list[tuple[str, torch.Tensor]], path: Path) -> None:
    """A square card: the template's title and badge (green: runs on CPU; amber: what it needs) over two rows of
    two frames (first and last of each row's video), each row labelled."""
    info = template(name)
    image = Image.new("RGB", (CARD, CARD), (24, 24, 28))
    draw = ImageDraw.Draw(image)
    draw.text((12, 8), info.title, fill=(255, 255, 255), font=ImageFont.load_default(size=34))
    font = ImageFont.load_default(size=25)
    box = draw.textbbox((22, 56), info.badge, font=font)
    draw.rounded_rectangle((box[0] - 10, box[1] - 6, box[2] + 10, box[3] + 6), radius=8,
                           fill=BADGE_COLOURS[info.runs_on_cpu])
    draw.text((22, 56), info.badge, fill=(255, 255, 255), font=font)
    assert box[2] + 10 <= CARD and draw.textbbox((12, 8), info.title, font=ImageFont.load_default(size=34))[2] <= CARD
    for r, (label_text, video) in enumerate(rows):
        for c, i in enumerate((0, len(video) - 1)):
            image.paste(to_image(video[i], TILE_W, TILE_H), (c * TILE_W, BAND + r * TILE_H))
        label(draw, (8, BAND + r * TILE_H + 8), label_text)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=88)


def task_input(task: str, clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The sample clip as a full-size template's task would get it, and what the task asks for (None: no
    picture of the target exists)."""
    from vidiff_model.mini.styles import style_target
    from vidiff_model.mini.tasks import degrade_frames

    kind = {"compare_guidance": "dehaze"}.get(task, task)
    if kind in ("recolor", "dehaze", "deblur", "inpaint"):
        degraded, _ = degrade_frames(clean, kind, seed=0)
        return degraded, clean
    if task in ("style_text", "style_image", "style_ip_adapter", "long_video", "long_video_batched"):
        return clean, style_target(clean, "sketch" if task == "style_text" else "watercolor")
    return clean, None


def full_size_cards() -> None:
    """A picture of the task for each full-size template: the sample clip as its input, and a classical stand-in
    for what it asks (the clean clip, a style filter), labelled as such, not as a model's output."""
    clean = read_video(SAMPLE_CLIP)[:16]
    for folder in (ROOT / "workflows", ROOT / "workflows" / "experimental"):
        for path in sorted((folder / "api").glob("*.json")):
            if path.stem.startswith("mini_"):
                continue
            inp, goal = task_input(path.stem, clean)
            rows = [("input", inp[:8]), ("asked for (not a result)", goal)] if goal is not None else [
                ("input", inp[:8]), ("input", inp[8:])]
            card(path.stem, rows, folder / f"vidiff_{path.stem}.jpg")


def mini_cards(records: dict, frames: dict) -> None:
    for name, (inp, out) in frames.items():
        r = records[name]
        folder = ROOT / "workflows" if r["offered"] else ROOT / "workflows" / "experimental"
        (ROOT / "workflows" / "experimental" / f"vidiff_{name}.jpg").unlink(missing_ok=True)
        (ROOT / "workflows" / f"vidiff_{name}.jpg").unlink(missing_ok=True)
        card(name, [(f"input: {r['input']['psnr']:.1f} dB", inp), (f"result: {r['result']['psnr']:.1f} dB", out)],
             folder / f"vidiff_{name}.jpg")


def demo(records: dict, frames: dict) -> None:
    """Animated WebP: one row per offered restoration, input | result."""
    rows = [frames[n] for n in ("mini_dehaze", "mini_inpaint", "mini_recolor", "mini_deblur")
            if n in frames and records[n]["offered"]]
    if not rows:
        return
    count = min(len(out) for _, out in rows)
    pictures = []
    for i in range(count):
        canvas = Image.new("RGB", (2 * DEMO_TILE, DEMO_TILE * len(rows)))
        for r, (inp, out) in enumerate(rows):
            canvas.paste(to_image(inp[i], DEMO_TILE), (0, r * DEMO_TILE))
            canvas.paste(to_image(out[i], DEMO_TILE), (DEMO_TILE, r * DEMO_TILE))
        pictures.append(canvas)
    DEMO.parent.mkdir(parents=True, exist_ok=True)
    pictures[0].save(DEMO, save_all=True, append_images=pictures[1:], duration=125, loop=0, quality=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running ComfyUI with this pack (default: start the test server)")
    parser.add_argument("--only", nargs="*", default=[], help="mini templates to run (default: all)")
    parser.add_argument("--no-mini", action="store_true", help="only the full-size cards (no model runs)")
    parser.add_argument("--redraw", action="store_true", help="redraw and re-check from the last run's files")
    args = parser.parse_args()
    full_size_cards()
    if args.no_mini:
        return
    server = None
    url = args.url
    if not url and not args.redraw:
        from comfy_harness import ComfyServer

        from peer_packs import custom_nodes_with

        work = Path(tempfile.mkdtemp(prefix="vidiff_cards_"))  # VideoHelperSuite: the Meta Batch template
        server = ComfyServer(work, custom_nodes=custom_nodes_with(work, "videohelpersuite")).start()
        url = server.url
    try:
        records, frames = run_minis(None if args.redraw else url, args.only)
    finally:
        if server:
            server.stop()
            shutil.rmtree(server.workdir, ignore_errors=True)
    old = json.loads(RESULTS.read_text())["templates"] if RESULTS.is_file() else {}
    for name, record in records.items():  # a redraw keeps the run's own time and metrics
        records[name] = {**{k: v for k, v in old.get(name, {}).items() if k in ("seconds", "metrics_nodes")},
                         **record}
    report = {"command": "scripts/make_template_cards.py", "offer_margin_db": OFFER_MARGIN_DB,
              "criterion": "result closer to the task's target than the input: PSNR by >= the margin, and SSIM",
              "templates": {**old, **records}}
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    mini_cards(report["templates"], frames)
    demo(report["templates"], frames)


if __name__ == "__main__":
    main()
