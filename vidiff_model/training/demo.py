"""A tiny, self-contained training setup: generated videos for every task and random encoders.

    python -m vidiff_model.training.demo OUT_DIR
    python -m vidiff_model.train --config OUT_DIR/train_tiny.yaml

It exists to try the whole pipeline on a CPU in a minute, with nothing downloaded (and the tests use
it): the encoders are random, so the result has no skill. For real training, point a config at real
weights and data (configs/train/*.yaml).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from . import synthetic


def _scene(frames: int, height: int, width: int, seed: int) -> np.ndarray:
    """(F, H, W, 3) uint8: a coloured background and a disc that moves, so there is motion to learn."""
    g = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = g.uniform(0.2, 0.8, 3)
    tilt = g.uniform(-0.3, 0.3, (3, 2))
    out = []
    for i in range(frames):
        img = base + tilt[:, 0] * (y[..., None] / height) + tilt[:, 1] * (x[..., None] / width)
        cy = height * (0.5 + 0.3 * math.sin(i / 3 + seed))
        cx = width * (0.5 + 0.3 * math.cos(i / 4 + seed))
        disc = ((y - cy) ** 2 + (x - cx) ** 2) < (min(height, width) / 5) ** 2
        img[disc] = g.uniform(0, 1, 3) if i == 0 else img[disc] * 0.3 + np.array([0.9, 0.3, 0.1]) * 0.7
        out.append((img.clip(0, 1) * 255).astype(np.uint8))
    return np.stack(out)


def write_mp4(path: Path, frames: np.ndarray, fps: int = 8) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "10"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_frames(folder: Path, frames: np.ndarray, suffix: str = ".png") -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:05d}{suffix}")


def write_masks(folder: Path, ids: np.ndarray) -> None:
    """Palette PNGs of object ids (DAVIS / Refer-YouTube-VOS annotations)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    palette = [0, 0, 0, 236, 95, 103, 249, 145, 87] + [0] * (256 * 3 - 9)
    for i, m in enumerate(ids):
        im = Image.fromarray(m.astype(np.uint8), mode="P")
        im.putpalette(palette)
        im.save(folder / f"{i:05d}.png")


def make_dataset(root: Path, frames: int = 10, height: int = 40, width: int = 48) -> None:
    """Every layout the trainer reads, with a few clips each."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "videos").mkdir(exist_ok=True)
    for k in range(3):
        write_mp4(root / "videos" / f"clip{k}.mp4", _scene(frames, height, width, k))
    write_frames(root / "videos" / "clip3", _scene(frames, height, width, 3))
    for k in range(2):  # HazeWorld-like pairs
        clean = _scene(frames, height, width, 10 + k)
        hazy = synthetic.add_haze(torch.from_numpy(clean).float() / 255, torch.Generator().manual_seed(k))
        write_frames(root / "haze" / "gt" / f"c{k}", clean)
        write_frames(root / "haze" / "hazy" / f"c{k}", (hazy.numpy() * 255).round().astype(np.uint8))
    for k in range(2):  # BSD-like pairs
        sharp = _scene(frames, height, width, 20 + k)
        blur = synthetic.add_motion_blur(torch.from_numpy(sharp).float() / 255, torch.Generator().manual_seed(k))
        write_frames(root / "bsd" / f"c{k}" / "Sharp" / "RGB", sharp)
        write_frames(root / "bsd" / f"c{k}" / "Blur" / "RGB", (blur.numpy() * 255).round().astype(np.uint8))
    expressions = {"videos": {}}
    for k in range(2):  # Refer-YouTube-VOS-like: frames, palette masks, expressions
        video = _scene(frames, height, width, 30 + k)
        y, x = np.mgrid[0:height, 0:width]
        ids = np.zeros((frames, height, width), np.int64)
        for i in range(frames):
            ids[i][(x > width * 0.1 + i) & (x < width * 0.45 + i) & (y > height * 0.3)] = 1
            ids[i][(x > width * 0.6) & (y < height * 0.4)] = 2
        write_frames(root / "refer" / "JPEGImages" / f"v{k}", video, ".jpg")
        write_masks(root / "refer" / "Annotations" / f"v{k}", ids)
        expressions["videos"][f"v{k}"] = {"expressions": {"0": {"exp": "the red box", "obj_id": "1"},
                                                          "1": {"exp": "the small square", "obj_id": "2"}}}
    (root / "refer" / "meta_expressions.json").write_text(json.dumps(expressions))
    rows, captions = [], []
    for k in range(2):  # editing pairs and text-video pairs
        src = _scene(frames, height, width, 40 + k)
        (root / "edits").mkdir(exist_ok=True)
        write_mp4(root / "edits" / f"src{k}.mp4", src)
        write_mp4(root / "edits" / f"tgt{k}.mp4", 255 - src)
        rows.append({"source": f"src{k}.mp4", "target": f"tgt{k}.mp4", "instruction": "Invert the colors of the video"})
        captions.append({"video": f"../videos/clip{k}.mp4", "caption": f"a disc moving over a gradient, take {k}"})
    (root / "edits" / "edits.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "captions").mkdir(exist_ok=True)
    (root / "captions" / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in captions))


def make_encoders(root: Path, text_width: int = 32, image_width: int = 32, seed: int = 0, vae_blocks: int = 2) -> None:
    """Random tiny CLIP text/vision encoders (with a byte-level tokenizer) and a tiny VAE that downsamples
    by 2^(vae_blocks − 1) (2 by default; 4 blocks give SD's factor 8)."""
    from diffusers import AutoencoderKL
    from transformers import (CLIPTextConfig, CLIPTextModel, CLIPTokenizer, CLIPVisionConfig,
                              CLIPVisionModelWithProjection)

    torch.manual_seed(seed)
    tokenizer = _byte_tokenizer()
    vocab = len(tokenizer.get_vocab())
    text = CLIPTextModel(CLIPTextConfig(vocab_size=vocab, hidden_size=text_width, intermediate_size=64,
                                        num_hidden_layers=1, num_attention_heads=4, max_position_embeddings=77,
                                        bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=vocab - 1))
    text.save_pretrained(root / "text_encoder")
    tokenizer.save_pretrained(root / "text_encoder")
    vision = CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                            num_attention_heads=4, image_size=28, patch_size=14,
                                                            projection_dim=image_width))
    vision.save_pretrained(root / "image_encoder")
    vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * vae_blocks,
                        up_block_types=("UpDecoderBlock2D",) * vae_blocks, block_out_channels=(32,) * vae_blocks,
                        layers_per_block=1, latent_channels=4, norm_num_groups=32)
    vae.save_pretrained(root / "vae")


def byte_chars() -> list[str]:
    """The 256 printable stand-ins for bytes that CLIP's byte-level BPE uses (GPT-2's table)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def _byte_tokenizer():
    """CLIP's byte-level BPE over the 256 byte characters, with merges that make each word of the task
    templates and demo captions one token (so instructions stay within 77 tokens, as with the real
    tokenizer); any other text still encodes, byte by byte. Nothing is downloaded."""
    import re

    from transformers import CLIPTokenizer

    from .templates import TEMPLATES

    chars = byte_chars()
    tokens = chars + [c + "</w>" for c in chars]
    corpus = " ".join(t for ts in TEMPLATES.values() for t in ts) + " based on the first frames red green blue " \
        "yellow box small square invert colors of video a disc moving over gradient take"
    merges: list[tuple[str, str]] = []
    for word in sorted(set(re.findall(r"[a-z]+", corpus.lower()))):
        if len(word) < 2:
            continue
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        merged = parts[0]
        for p in parts[1:]:
            if (merged, p) not in merges:
                merges.append((merged, p))
            merged += p
            if merged not in tokens:
                tokens.append(merged)
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=merges)


TINY_CONFIG = """\
# A tiny CPU run on the demo data (python -m vidiff_model.training.demo): minutes, no skill.
output_dir: run
stage: v2v
model: {{random: tiny}}
encoders: {{text_encoder: encoders/text_encoder, image_encoder: encoders/image_encoder, vae: encoders/vae}}
data:
  frames: 4
  height: 32
  width: 32
  sources:
    - {{type: videos, path: data/videos}}
    - {{type: paired, task: dehaze, root: data/haze, input: "hazy/{{clip}}", target: "gt/{{clip}}"}}
    - {{type: paired, task: deblur, root: data/bsd, input: "{{clip}}/Blur/RGB", target: "{{clip}}/Sharp/RGB"}}
    - {{type: segmentation, root: data/refer, images: "JPEGImages/{{clip}}", masks: "Annotations/{{clip}}", names: meta_expressions.json}}
    - {{type: editing, jsonl: data/edits/edits.jsonl}}
max_steps: {steps}
learning_rate: 0.001
save_every: 10
validation: {{every: 0, samples: 1, steps: 4}}
export_dtype: fp32
cpu: true
"""


def make_demo(root: Path, steps: int = 30) -> Path:
    make_dataset(root / "data")
    make_encoders(root / "encoders")
    config = root / "train_tiny.yaml"
    config.write_text(TINY_CONFIG.format(steps=steps))
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vidiff_model.training.demo", description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder to create")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args(argv)
    print(make_demo(Path(args.out), args.steps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
