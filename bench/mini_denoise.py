"""How well one denoising step of a vidiff-mini checkpoint recovers the target, per noise level (issue 13).

    .venv/bin/python bench/mini_denoise.py --model models/vidiff/vidiff_mini.safetensors [--model OTHER ...]
        [--val data/mini/val] [--clips 8] [--tasks recolor dehaze deblur inpaint] [--t 100 300 500 700 900 999]

Sampling starts from pure noise at t = 999, so a model that predicts the clean target well only at low noise
draws a picture of its own in the first steps and cannot get back to the source's. For every validation clip
(first 16 frames) and task, the clip is degraded (`mini.tasks.make_pair`, the evaluation's seeds), both are
encoded with the mini VAE, the target is noised to each t with fixed noise, and the checkpoint predicts ε
with the task's canonical instruction (no guidance). Printed: the mean squared error of the implied x̂0
against x0 in the UNet's scaled latent space, beside the target's own variance (what predicting the mean
would score). Lower is better; a gap that stays small up to t = 999 is what the sampler needs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from vidiff_model.mini import MINI_TEXT_ENCODER, MINI_VAE  # noqa: E402


def x0_errors(model_path: Path, a: argparse.Namespace) -> dict[str, list[float]]:
    """{task: [mean x̂0 MSE at each t]} over the validation clips."""
    from mini_quality import default_tokenizer, eval_seed, load_val_clips

    from vidiff_model.checkpoints.native import load_vidiff
    from vidiff_model.mini.autoencoder import MiniVAE
    from vidiff_model.mini.tasks import instructions, make_pair
    from vidiff_model.sampling import alphas_cumprod
    from vidiff_model.training.encoders import load_text_model

    model = load_vidiff(model_path, dtype=torch.float32).eval()
    vae = MiniVAE(a.vae)
    text = load_text_model(str(a.text_encoder), str(a.tokenizer or default_tokenizer()))
    alphas = alphas_cumprod(model.config.beta_schedule).float()
    scale = model.config.latent_scaling_factor
    clips = load_val_clips(a.val, a.clips, 16, None)
    out = {}
    with torch.no_grad():
        for task in a.tasks:
            tokens = model.encode_instruction(text.encode([instructions(task)[0]]))
            errors = [[] for _ in a.t]
            for name, frames in clips.items():
                seed = eval_seed(name, task)
                source, target, _ = make_pair(task, frames, seed)
                src = vae.encode(source)[None]  # (1, 4, F, h, w) raw
                x0 = vae.encode(target)[None] * scale  # (1, 4, F, h, w) scaled
                noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
                for i, t in enumerate(a.t):
                    al = alphas[t]
                    noisy = al.sqrt() * x0 + (1 - al).sqrt() * noise
                    eps = model(noisy, src, torch.tensor([t]), tokens)
                    x0_hat = (noisy - (1 - al).sqrt() * eps) / al.sqrt()
                    errors[i].append(float((x0_hat - x0).pow(2).mean()))
            out[task] = [sum(e) / len(e) for e in errors]
            out.setdefault("_target_var", []).append(float(x0.var()))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, action="append", required=True, help="a VIDiff checkpoint (repeatable)")
    p.add_argument("--vae", type=Path, default=MINI_VAE)
    p.add_argument("--text-encoder", type=Path, default=MINI_TEXT_ENCODER)
    p.add_argument("--tokenizer", type=Path, default=None)
    p.add_argument("--val", type=Path, default=ROOT / "data" / "mini" / "val")
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--tasks", nargs="*", default=["recolor", "dehaze", "deblur", "inpaint"])
    p.add_argument("--t", type=int, nargs="*", default=[100, 300, 500, 700, 900, 999])
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    sys.path.insert(0, str(ROOT / "bench"))
    print(f"x̂0 mean squared error (scaled latents), {a.clips} validation clips × 16 frames, no guidance")
    print("| checkpoint | task | " + " | ".join(f"t={t}" for t in a.t) + " |")
    print("|---|---|" + "---|" * len(a.t))
    for path in a.model:
        result = x0_errors(path, a)
        var = sum(result.pop("_target_var")) / len(a.tasks)
        for task, values in result.items():
            print(f"| {path.name} | {task} | " + " | ".join(f"{v:.3f}" for v in values) + " |", flush=True)
        print(f"| {path.name} | (target variance) | {var:.3f} |" + " |" * (len(a.t) - 1))


if __name__ == "__main__":
    main()
