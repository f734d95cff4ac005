"""Benchmark: load time and peak memory of the full-size (SD-1.5) VIDiff model on this machine.

    .venv/bin/python bench/load_checkpoints.py [--unet IP2P.safetensors --motion-module MM.ckpt]

Without files it generates full-size fixtures first (random weights in the real layouts: an
InstructPix2Pix single file with VAE, text encoder and schedule buffers, fp16 safetensors; an
AnimateDiff v2 motion module, fp16 .ckpt). Each measurement runs in a fresh process, so peak RSS
(`ru_maxrss`) is that load's own; "import" is the RSS after importing torch + diffusers alone.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def _peak_mib() -> float:
    """Peak RSS of this process image (VmHWM). Not ru_maxrss: Linux carries that over fork and exec from
    the parent, which has just generated gigabytes of fixtures."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(task: str, args: list[str]) -> dict:
    """One measurement, run inside a fresh interpreter."""
    import torch

    import vidiff_model  # noqa: F401  (import cost is not part of the load time)

    base = _peak_mib()
    start = time.perf_counter()
    if task == "from_parts":
        unet, motion, dtype = args
        model, _ = vidiff_model.build_vidiff_from_parts(unet, motion, dtype=getattr(torch, dtype))
    elif task == "vidiff":
        (path,) = args
        model = vidiff_model.load_vidiff(path)
    else:
        raise ValueError(task)
    seconds = time.perf_counter() - start
    # safetensors tensors may still be lazily mapped pages: read every weight once to count the real cost
    with torch.no_grad():
        sum(float(t.float().abs().sum()) for t in model.state_dict().values())
    touched = time.perf_counter() - start
    return {"seconds": seconds, "touched": touched, "peak_mib": _peak_mib(), "import_mib": base,
            "params": model.num_parameters()["total"], "dtype": str(model.dtype)}


def measure(task: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", task, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_fixtures(folder: Path) -> tuple[Path, Path]:
    import torch
    from fixture_files import ldm_checkpoint_tensors, ldm_unet_shapes, motion_module_tensors, save_tensors

    unet = save_tensors(folder / "instruct-pix2pix-00-22000.safetensors", ldm_checkpoint_tensors(
        ldm_unet_shapes(in_channels=8), with_vae=True, with_text_encoder=True, with_schedule_buffers=True,
        dtype=torch.float16))
    motion = save_tensors(folder / "mm_sd_v15_v2.ckpt", motion_module_tensors("v2", dtype=torch.float16))
    return unet, motion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unet")
    parser.add_argument("--motion-module")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1:])))
        return
    import torch

    from vidiff_model import save_vidiff

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.unet and args.motion_module:
            unet, motion = Path(args.unet), Path(args.motion_module)
        else:
            print("generating full-size fixture files ...", flush=True)
            unet, motion = make_fixtures(folder)
        sizes = f"{unet.stat().st_size / 2**30:.2f} GiB + {motion.stat().st_size / 2**30:.2f} GiB"
        print(f"inputs: {unet.name} + {motion.name} ({sizes}); torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads")
        rows = []
        for dtype in ("float16", "float32"):
            rows.append((f"from parts -> {dtype}", measure("from_parts", str(unet), str(motion), dtype)))
        import vidiff_model

        model, _ = vidiff_model.build_vidiff_from_parts(unet, motion, dtype=torch.float16)
        native = folder / "vidiff_fp16.safetensors"
        save_vidiff(model, native)
        del model
        rows.append(("VIDiff file (fp16)", measure("vidiff", str(native))))
        print(f"{'load':24s} {'load s':>7s} {'+read all s':>12s} {'peak RSS MiB':>13s} {'after import':>13s} "
              f"{'parameters':>14s}")
        for name, r in rows:
            print(f"{name:24s} {r['seconds']:7.1f} {r['touched']:12.1f} {r['peak_mib']:13.0f} {r['import_mib']:13.0f} "
                  f"{r['params']:14,d}")


if __name__ == "__main__":
    main()
