"""vidiff-mini's quality table (issue 13, item 8): model vs degraded input vs a classical baseline.

    .venv/bin/python bench/mini_quality.py --val data/mini/val --out bench/results/mini_quality
        [--model models/vidiff/vidiff_mini.safetensors] [--vae ...] [--text-encoder ...] [--tokenizer ...]
        [--clips N] [--frames F] [--size S] [--steps 20] [--video-cfg 1] [--text-cfg 1] [--docs docs]

For every validation clip (`--val`: .npy uint8 (F, H, W, 3) arrays, `vidiff_model.mini.data`'s split; its
first F frames, resized to S × S when `--size` is given):
- restoration tasks (recolor, dehaze, deblur, inpaint): the clip is degraded by `mini.tasks.make_pair` (the
  training degradations) with a fixed seed per clip and task; the model translates it with the task's first
  (canonical) phrasing; output, degraded input, the classical baseline (`mini.baselines`), the autoencoder's
  round trip of the target (the ceiling: the model's output passes through the same decoder) and the ground
  truth itself are scored against the ground truth: PSNR, SSIM, warping error, and for recolor Colorfulness
  and CDC (`vidiff_model.metrics`). The output is scored as it is and as the restoration templates finish it
  (`Translator.finish`: dehaze, deblur: the detail the autoencoder lost from the input added back; recolor:
  the output's colour on the input's luma; inpaint: the output pasted into the input's holes).
- styles: the model is asked for each style (`mini.styles`); the output's mean L1 distance to every style's
  target is recorded; a hit is an output closest to its own style's target (issue target: >= 90 % of clips).
- long video: every validation clip with at least `--long-frames` frames (48; if none, the longest, played
  forwards and backwards to reach it) is translated autoregressively in clips of `--long-clip` frames sharing
  `--long-overlap`; the seam ratio (`long_video.seam_report`, decoded frames, as the model makes them and as
  the template finishes them) beside the ground truth's own ratio for the same clip plan, averaged over the
  clips (issue target: <= 1.2).
Writes OUT/quality.md (the tables), OUT/quality.json (every figure, per clip, and the settings) and one PNG
per task under `--docs` (rows: frames; columns: input | output | output as the templates finish it | target;
styles: input | output | target).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from vidiff_model.mini import MINI_TEXT_ENCODER, MINI_VAE, MINI_VIDIFF  # noqa: E402

RESTORATION = ("recolor", "dehaze", "deblur", "inpaint")
ROW_NAMES = {"input": "degraded input", "baseline": "classical baseline", "model": "VIDiff-mini",
             "finished": "VIDiff-mini as the templates finish it",
             "autoencoder": "autoencoder round trip (ceiling of the model alone)", "target": "ground truth"}
COLOR_METRICS = ("colorfulness", "cdc")


def default_tokenizer() -> Path:
    comfy = os.environ.get("VIDIFF_COMFYUI") or os.environ.get("COMFYUI_PATH") or ROOT / ".comfyui" / "ComfyUI"
    return Path(comfy) / "comfy" / "sd1_tokenizer"


def eval_seed(clip: str, task: str) -> int:
    """The degradation and noise seed of one validation clip and task (independent of --clips)."""
    return int(hashlib.sha1(f"mini-eval/{clip}/{task}".encode()).hexdigest()[:12], 16)


# -- loading -------------------------------------------------------------------------------------------------
def load_val_clips(folder: Path, clips: int, frames: int, size: int | None) -> dict[str, torch.Tensor]:
    """{name: (F, S, S, 3) float [0, 1]}: the first `frames` frames of the first `clips` clips (0: all)."""
    paths = sorted(p for p in Path(folder).glob("*.npy") if not p.name.endswith(".tmp.npy"))
    if not paths:
        raise SystemExit(f"--val: no .npy clips in {folder}; write them with python -m vidiff_model.mini.data")
    out = {}
    for p in paths[:clips or None]:
        x = torch.from_numpy(np.array(np.load(p, mmap_mode="r")[:frames])).float() / 255
        out[p.stem] = resize_frames(x, size)
    return out


def resize_frames(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Centre square crop and area/bicubic resize to size × size; None keeps the frames."""
    if not size:
        return x
    h, w = x.shape[1:3]
    s = min(h, w)
    x = x[:, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    if s == size:
        return x.contiguous()
    y = F.interpolate(x.permute(0, 3, 1, 2), size=(size, size), mode="area" if s > size else "bicubic")
    return y.clamp(0, 1).permute(0, 2, 3, 1).contiguous()


class Translator:
    """The model, the mini VAE and the text encoder: frames + instruction -> frames."""

    def __init__(self, a: argparse.Namespace):
        from vidiff_model.checkpoints.native import load_vidiff
        from vidiff_model.guidance import GuidanceConfig
        from vidiff_model.mini.autoencoder import MiniVAE
        from vidiff_model.sampling import DiffusersSampler
        from vidiff_model.training.encoders import load_text_model

        if Path(a.text_encoder) == MINI_TEXT_ENCODER:
            from vidiff_model.mini.text_encoder import ensure_clip_l

            ensure_clip_l(a.text_encoder)  # generated on first use (not in the repository)
        self.model = load_vidiff(a.model, dtype=torch.float32).eval()
        self.vae = MiniVAE(a.vae)
        self.text = load_text_model(str(a.text_encoder), str(a.tokenizer))
        self.sampler = DiffusersSampler(a.sampler, a.scheduler, a.steps)
        self.guidance = GuidanceConfig(video_cfg=a.video_cfg, text_cfg=a.text_cfg)
        self.style_guidance = GuidanceConfig(video_cfg=a.style_video_cfg, text_cfg=a.style_text_cfg)
        self.null = self.model.null_instruction(self.text.encode([""]))
        self._tokens: dict[str, torch.Tensor] = {}

    def tokens(self, text: str) -> torch.Tensor:
        if text not in self._tokens:
            self._tokens[text] = self.model.encode_instruction(self.text.encode([text]))
        return self._tokens[text]

    def __call__(self, frames: torch.Tensor, instruction: str, seed: int, long_video=None, guidance=None):
        """(F, H, W, 3) -> ((F, H, W, 3) result, VideoResult)."""
        from vidiff_model.long_video import continuation_instruction
        from vidiff_model.pipeline import translate_video

        source = self.vae.encode(frames)[None]  # (1, 4, F, h, w) raw
        result = translate_video(self.model, source, self.tokens(instruction), self.null, seed=seed,
                                 sampler=self.sampler, guidance=guidance or self.guidance, long_video=long_video,
                                 continuation=lambda n: self.tokens(continuation_instruction(instruction, n)))
        return self.vae.decode(result.latent[0]), result

    def round_trip(self, frames: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(self.vae.encode(frames))

    def finish(self, task: str, source: torch.Tensor, output: torch.Tensor, mask: torch.Tensor | None = None):
        """What the restoration templates save (scripts/make_workflows.py). inpaint: the output inside the holes,
        the input's known pixels elsewhere (the host's ImageCompositeMasked); recolor: the output's colour on the
        gray input's luma (VIDiffKeepLuminance); dehaze, deblur: the detail the autoencoder lost from the input
        added back (VIDiffDetailTransfer)."""
        from vidiff_model.video_ops import keep_luminance, transfer_detail

        if task == "inpaint":
            return torch.where(mask[..., None] > 0.5, output, source)
        if task == "recolor":
            return keep_luminance(source, output)
        return transfer_detail(source, output, self.round_trip(source))


# -- scoring -------------------------------------------------------------------------------------------------
def score(pred: torch.Tensor, ref: torch.Tensor, color: bool) -> dict[str, float]:
    from vidiff_model.metrics import evaluate_video

    m = evaluate_video(pred.float(), ref.float(), flow=pred.shape[0] > 1)
    keys = ("psnr", "ssim", "warping_error") + (COLOR_METRICS if color else ())
    return {k: float(m[k]) for k in keys if k in m}


def mean_l1(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().mean())


def mean_of(rows: list[dict[str, float]]) -> dict[str, float]:
    out = {}
    for k in rows[0]:
        v = [r[k] for r in rows if math.isfinite(r[k])]
        out[k] = float(np.mean(v)) if v else float("nan")
    return out


def picture(path: Path, columns: list[torch.Tensor], frames: int = 3) -> None:
    """PNG: `frames` evenly spaced rows, one column per video (e.g. input | output | target)."""
    from PIL import Image

    n = columns[0].shape[0]
    idx = sorted({round(i * (n - 1) / max(frames - 1, 1)) for i in range(min(frames, n))})
    grid = torch.cat([torch.cat([c[i] for c in columns], dim=1) for i in idx], dim=0)  # (rows·H, cols·W, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((grid.clamp(0, 1) * 255).round().byte().numpy()).save(path, optimize=True)


# -- the three parts -----------------------------------------------------------------------------------------
def restoration(run: Translator, clips: dict[str, torch.Tensor], a, docs: Path | None) -> dict:
    from vidiff_model.mini.baselines import BASELINE_NAMES, BASELINES
    from vidiff_model.mini.tasks import instructions, make_pair

    results = {}
    for task in a.tasks:
        instruction = instructions(task)[0]
        per_clip = {}
        for i, (name, frames) in enumerate(clips.items()):
            seed = eval_seed(name, task)
            source, target, known = make_pair(task, frames, seed)
            output, _ = run(source, instruction, seed)
            ceiling = run.round_trip(target)
            videos = {"input": source, "baseline": BASELINES[task](source, **known), "model": output,
                      "finished": run.finish(task, source, output, known.get("mask")), "autoencoder": ceiling}
            per_clip[name] = {k: score(v, target, task == "recolor") for k, v in videos.items()}
            per_clip[name]["target"] = score(target, target, task == "recolor")
            if i == 0 and docs is not None:
                picture(docs / f"mini_{task}.png", [source, output, videos["finished"], target])
            print(f"{task} {name}: model {per_clip[name]['model']['psnr']:.2f} dB, finished "
                  f"{per_clip[name]['finished']['psnr']:.2f} dB, input "
                  f"{per_clip[name]['input']['psnr']:.2f} dB, baseline {per_clip[name]['baseline']['psnr']:.2f} dB",
                  flush=True)
        rows = {k: mean_of([c[k] for c in per_clip.values()]) for k in ROW_NAMES}
        results[task] = {"instruction": instruction, "baseline": BASELINE_NAMES[task], "mean": rows,
                         "clips": per_clip}
    return results


def styles(run: Translator, clips: dict[str, torch.Tensor], a, docs: Path | None) -> dict:
    from vidiff_model.mini.styles import STYLES, style_instruction, style_target

    names = list(STYLES)
    distance = {s: {t: [] for t in names} for s in names}  # asked style -> target style -> per clip
    hits = {s: [] for s in names}
    ceiling = {s: [] for s in names}  # the target's own autoencoder round trip: closest to its own target?
    between = {s: {t: [] for t in names} for s in names}  # how far apart the targets themselves are
    for i, (clip, frames) in enumerate(clips.items()):
        targets = {t: style_target(frames, t) for t in names}
        for s in names:
            round_trip = run.round_trip(targets[s])
            for t in names:
                between[s][t].append(mean_l1(targets[s], targets[t]))
            ceiling[s].append(min(names, key=lambda t: mean_l1(round_trip, targets[t])) == s)
            output, _ = run(frames, style_instruction(s), eval_seed(clip, f"style:{s}"), guidance=run.style_guidance)
            d = {t: mean_l1(output, targets[t]) for t in names}
            for t in names:
                distance[s][t].append(d[t])
            hits[s].append(min(d, key=d.get) == s)
            if i == 0 and docs is not None:
                picture(docs / f"mini_style_{s}.png", [frames, output, targets[s]])
        print(f"styles {clip}: " + ", ".join(f"{s} {'hit' if hits[s][-1] else 'miss'}" for s in names), flush=True)
    all_hits = [h for s in names for h in hits[s]]
    return {"instructions": {s: style_instruction(s) for s in names},
            "mean_l1": {s: {t: float(np.mean(v)) for t, v in row.items()} for s, row in distance.items()},
            "own_closest": {s: float(np.mean(h)) for s, h in hits.items()},
            "own_closest_all": float(np.mean(all_hits)), "pairs": len(all_hits),
            "round_trip_own_closest": {s: float(np.mean(h)) for s, h in ceiling.items()},
            "target_l1": {s: {t: float(np.mean(v)) for t, v in row.items()} for s, row in between.items()},
            "per_clip": {"distance": distance, "hits": hits}}


def long_video(run: Translator, folder: Path, a, docs: Path | None) -> dict:
    """Every validation clip with at least `--long-frames` frames (none: the longest, looped), each translated
    autoregressively; the means over them, and each clip's figures under "per_clip"."""
    paths = sorted(p for p in Path(folder).glob("*.npy") if not p.name.endswith(".tmp.npy"))
    arrays = {p.stem: np.load(p, mmap_mode="r") for p in paths}
    names = [n for n, x in arrays.items() if x.shape[0] >= a.long_frames]
    names = names or [max(arrays, key=lambda n: arrays[n].shape[0])]
    per_clip = {n: one_long_video(run, n, arrays[n], a, docs if i == 0 else None) for i, n in enumerate(names)}
    first = per_clip[names[0]]
    means = {k: float(np.mean([c[k] for c in per_clip.values()])) for k in first if k != "clips"}
    print("long video: " + ", ".join(f"{n} seam ratio {c['seam_ratio']:.2f} / finished {c['finished_seam_ratio']:.2f}"
                                     for n, c in per_clip.items()), flush=True)
    return {"task": a.long_task, "frames": a.long_frames, "clip_length": a.long_clip, "overlap": a.long_overlap,
            "videos": len(names), "clips": first["clips"], **means, "per_clip": per_clip}


def one_long_video(run: Translator, name: str, x: np.ndarray, a, docs: Path | None) -> dict:
    from vidiff_model.long_video import LongVideoOptions, seam_report
    from vidiff_model.mini.tasks import instructions, make_pair

    x = np.asarray(x)
    while x.shape[0] < a.long_frames:  # forwards and backwards (a seamless loop) until long enough
        x = np.concatenate([x, x[::-1][1:]])
    frames = resize_frames(torch.from_numpy(np.array(x[:a.long_frames])).float() / 255, a.size)
    seed = eval_seed(name, f"long:{a.long_task}")
    source, target, known = make_pair(a.long_task, frames, seed)
    options = LongVideoOptions(clip_length=a.long_clip, overlap=a.long_overlap, mode="autoregressive")
    output, result = run(source, instructions(a.long_task)[0], seed, long_video=options)
    out_seams = seam_report(output, result.clips, frame_axis=0)
    finished = run.finish(a.long_task, source, output, known.get("mask"))  # as the long-video template
    finished_seams = seam_report(finished, result.clips, frame_axis=0)
    gt_seams = seam_report(target, result.clips, frame_axis=0)
    if docs is not None and len(result.clips) > 1:
        b = result.clips[1].new_start  # the first seam: the frames either side of it
        picture(docs / "mini_long_video.png", [v[b - 1:b + 1] for v in (source, output, finished, target)], 2)
    return {"clips": len(result.clips), "seam_ratio": out_seams.ratio, **given_frame_error(result),
            "boundary_change": out_seams.boundary_change, "inner_change": out_seams.inner_change,
            "ground_truth_seam_ratio": gt_seams.ratio, "psnr": score(output, target, False)["psnr"],
            "finished_seam_ratio": finished_seams.ratio, "finished_psnr": score(finished, target, False)["psnr"]}


def given_frame_error(result) -> dict[str, float]:
    """How well each later clip keeps the frames it continues from: mean |latent| difference (raw scale) between
    clip k's own result on its first `overlap` frames and clip k−1's results there (which the output keeps, and
    which were clip k's source there), beside the output latent's mean change between consecutive frames. A model
    that learned "Based on the first n frames" copies them (error ≪ frame change); one that did not makes a jump at
    every seam."""
    from vidiff_model.long_video import frame_changes

    errors = [mean_l1(own[:, :, :c.overlap], result.latent[:, :, c.start:c.new_start])
              for c, own in zip(result.clips[1:], result.clip_results[1:])]
    return {"given_frame_error": float(np.mean(errors)) if errors else float("nan"),
            "latent_frame_change": float(frame_changes(result.latent, 2).mean())}


# -- the report ----------------------------------------------------------------------------------------------
def json_safe(x):
    """NaN and infinities (e.g. the ground truth's PSNR against itself) as null: strict JSON."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def fmt(v: float, digits: int = 2) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def markdown(report: dict) -> str:
    s = report["settings"]
    lines = [f"# vidiff-mini quality ({s['clips']} validation clips × {s['frames']} frames, {s['size']}, "
             f"{s['sampler']} {s['steps']} steps, s_V {s['video_cfg']}, s_T {s['text_cfg']})", ""]
    checks = []
    for task, r in report.get("restoration", {}).items():
        color = task == "recolor"
        head = "| | PSNR ↑ | SSIM ↑ | warping error ↓ |" + (" Colorfulness | CDC ↓ |" if color else "")
        lines += [f"### {task}: \"{r['instruction']}\"", "", head, "|---" * (head.count("|") - 1) + "|"]
        for key, label in ROW_NAMES.items():
            m = r["mean"][key]
            label = f"{label}: {r['baseline']}" if key == "baseline" else label
            cells = [fmt(m["psnr"]) if key != "target" else "–", fmt(m["ssim"], 3) if key != "target" else "–",
                     fmt(m.get("warping_error", float("nan")), 4)]
            if color:
                cells += [fmt(m["colorfulness"], 1), fmt(m["cdc"], 4)]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
        inp, base = r["mean"]["input"], r["mean"]["baseline"]
        checks.append((task, *[(r["mean"][k]["psnr"] > inp["psnr"], r["mean"][k]["psnr"] > base["psnr"],
                                r["mean"][k].get("warping_error", math.nan) <= base.get("warping_error", math.nan))
                               for k in ("model", "finished")]))
    if checks:
        lines += ["| task | PSNR above input: model alone / as finished | above baseline | warping error ≤ "
                  "baseline's |", "|---|---|---|---|"]
        yes = lambda x: "yes" if x else "no"  # noqa: E731
        lines += [f"| {t} | " + " | ".join(f"{yes(m[i])} / {yes(d[i])}" for i in range(3)) + " |"
                  for t, m, d in checks]
        for k, label in ((1, "The model alone"), (2, "As the templates finish it, the output")):
            lines += ["", f"{label} is above the input on {sum(c[k][0] for c in checks)} of {len(checks)} tasks "
                      f"(target: all) and above the baseline on {sum(c[k][1] for c in checks)} of {len(checks)} "
                      "(target: at least 3 of 4)."]
        lines.append("")
    st = report.get("styles")
    if st:
        names = list(st["mean_l1"])
        guided = f"s_V {report['settings'].get('style_video_cfg')}, s_T {report['settings'].get('style_text_cfg')}"
        lines += [f"### styles ({guided}): "
                  "mean L1 distance of the output to each style's target (rows: the instruction)", "",
                  "| asked | " + " | ".join(names) + " | own target closest | nearest other target (L1 between the "
                  "targets) | the target's autoencoder round trip: own target closest |", "|---" * (len(names) + 4) + "|"]
        for s in names:
            cells = [(f"**{fmt(st['mean_l1'][s][t], 3)}**" if t == s else fmt(st["mean_l1"][s][t], 3)) for t in names]
            gaps = {t: v for t, v in st.get("target_l1", {}).get(s, {}).items() if t != s}
            nearest = min(gaps, key=gaps.get) if gaps else None
            near = f"{nearest} ({fmt(gaps[nearest], 3)})" if nearest else "–"
            ceiling = st.get("round_trip_own_closest", {}).get(s)
            lines.append(f"| {s} | " + " | ".join(cells) + f" | {st['own_closest'][s] * 100:.0f} % | {near} | "
                         + ("–" if ceiling is None else f"{ceiling * 100:.0f} %") + " |")
        lines += ["", f"Own style's target closest on {st['own_closest_all'] * 100:.0f} % of {st['pairs']} "
                  "clip × style pairs (target: ≥ 90 %).", ""]
    lv = report.get("long_video")
    if lv:
        lines += [f"### long video: {lv['task']}, {lv['frames']} frames of {lv['videos']} validation clip(s), "
                  f"autoregressive, {lv['clips']} clips of {lv['clip_length']} sharing {lv['overlap']} (means)", "",
                  f"Seam ratio {fmt(lv['seam_ratio'])} (target ≤ 1.2; the ground truth's own ratio for the same "
                  f"plan: {fmt(lv['ground_truth_seam_ratio'])}); PSNR {fmt(lv['psnr'])} dB. As the template finishes "
                  f"it: seam ratio {fmt(lv['finished_seam_ratio'])}, PSNR {fmt(lv['finished_psnr'])} "
                  "dB.", "",
                  f"Later clips keep the frames they continue from to within {fmt(lv['given_frame_error'], 3)} (mean "
                  "|latent| difference to the previous clip's results there, raw scale), beside a change of "
                  f"{fmt(lv['latent_frame_change'], 3)} between consecutive frames of the output.", ""]
    lines.append(f"Took {report['seconds'] / 60:.1f} min.")
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=MINI_VIDIFF, help="VIDiff checkpoint")
    p.add_argument("--vae", type=Path, default=MINI_VAE, help="the mini VAE (host TAESD single file)")
    p.add_argument("--text-encoder", type=Path, default=MINI_TEXT_ENCODER, help="clip_l file or CLIPTextModel folder")
    p.add_argument("--tokenizer", type=Path, default=None, help="default: ComfyUI's comfy/sd1_tokenizer")
    p.add_argument("--val", type=Path, default=ROOT / "data" / "mini" / "val")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "mini_quality")
    p.add_argument("--docs", type=Path, default=ROOT / "docs", help="where the pictures go ('' for none)")
    p.add_argument("--clips", type=int, default=0, help="first N validation clips (0: all)")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=0, help="frame side (multiple of 8); 0 keeps the clips' size")
    p.add_argument("--tasks", nargs="*", default=list(RESTORATION), choices=RESTORATION)
    p.add_argument("--no-styles", action="store_true")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--sampler", default="euler")
    p.add_argument("--scheduler", default="normal")
    p.add_argument("--video-cfg", type=float, default=1.0, help="the mini templates' s_V (no guidance)")
    p.add_argument("--text-cfg", type=float, default=1.0, help="the mini templates' s_T")
    p.add_argument("--style-video-cfg", type=float, default=1.0, help="s_V of the style templates")
    p.add_argument("--style-text-cfg", type=float, default=7.5,
                   help="s_T of the style templates: the instruction alone picks the style, so it is guided")
    p.add_argument("--long-frames", type=int, default=48, help="0 skips the long-video part")
    p.add_argument("--long-clip", type=int, default=16)
    p.add_argument("--long-overlap", type=int, default=4)
    p.add_argument("--long-task", default="recolor", choices=RESTORATION)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    a = p.parse_args(argv)
    if a.size % 8:
        p.error(f"--size: {a.size} is not a multiple of 8 (the VAE works on 8 × 8 blocks)")
    a.tokenizer = a.tokenizer or default_tokenizer()
    return a


def main(argv: list[str] | None = None) -> dict:
    a = parse(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    start = time.perf_counter()
    torch.manual_seed(0)
    docs = a.docs if str(a.docs) not in ("", ".") else None
    clips = load_val_clips(a.val, a.clips, a.frames, a.size or None)
    run = Translator(a)
    first = next(iter(clips.values()))
    settings = {"model": str(a.model), "vae": str(a.vae), "text_encoder": str(a.text_encoder), "clips": len(clips),
                "frames": int(first.shape[0]), "size": f"{first.shape[2]}×{first.shape[1]}", "steps": a.steps,
                "sampler": a.sampler, "scheduler": a.scheduler, "video_cfg": a.video_cfg, "text_cfg": a.text_cfg,
                "style_video_cfg": a.style_video_cfg, "style_text_cfg": a.style_text_cfg,
                "clip_names": list(clips)}
    report: dict = {"settings": settings, "seconds_per_part": {}}
    for part, fn in (("restoration", lambda: restoration(run, clips, a, docs) if a.tasks else None),
                     ("styles", lambda: None if a.no_styles else styles(run, clips, a, docs)),
                     ("long_video", lambda: long_video(run, a.val, a, docs) if a.long_frames else None)):
        t = time.perf_counter()
        value = fn()
        if value is not None:
            report[part] = value
            report["seconds_per_part"][part] = time.perf_counter() - t
    report["seconds"] = time.perf_counter() - start
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "quality.json").write_text(json.dumps(json_safe(report), indent=1, allow_nan=False))
    (a.out / "quality.md").write_text(markdown(report))
    print(markdown(report))
    print(f"wrote {a.out / 'quality.md'} and quality.json; took {report['seconds']:.1f} s "
          f"({report['seconds'] / 60:.1f} min)", flush=True)
    return report


if __name__ == "__main__":
    main()
