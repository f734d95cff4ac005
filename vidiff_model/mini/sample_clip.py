"""Write the pack's sample clip from a validation clip (never a training one): lossless animated WebP.

    python -m vidiff_model.mini.sample_clip data/mini sample_clips/vidiff_mini_sample.webp
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SAMPLE_SOURCE = "video_capybara_v0_1_video_edit-1"  # a white horse galloping over green grass: colour and motion


def write_sample(data: Path, out: Path, name: str = SAMPLE_SOURCE, fps: float = 16.0) -> Path:
    from PIL import Image

    split = json.loads((data / "split.json").read_text())["split"]
    assert name in split["val"], f"{name}: the sample clip must come from the validation split ({split['val']})"
    frames = np.load(data / "val" / f"{name}.npy")  # (F, S, S, 3) uint8
    images = [Image.fromarray(f) for f in frames]
    out.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(out, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0,
                   lossless=True, method=4)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m vidiff_model.mini.sample_clip", description=__doc__.split("\n")[0])
    p.add_argument("data", type=Path)
    p.add_argument("out", type=Path)
    a = p.parse_args(argv)
    path = write_sample(a.data, a.out)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
