"""Train VIDiff: `python -m vidiff_model.train --config CONFIG.yaml` (see configs/train/ and docs/training.md).

Runs one process as it is, or many under `accelerate launch` / `torchrun`. Re-running the same command
resumes from the last complete checkpoint in `output_dir`.
"""

from __future__ import annotations

import argparse
import os
import sys

from .errors import VIDiffError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vidiff_model.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="a training YAML (configs/train/*.yaml)")
    parser.add_argument("--output-dir", help="override output_dir")
    parser.add_argument("--max-steps", type=int, help="override max_steps")
    args = parser.parse_args(argv)
    from .training.config import load_config
    from .training.trainer import train

    overrides = {k: v for k, v in (("output_dir", args.output_dir and os.path.abspath(args.output_dir)),
                                   ("max_steps", args.max_steps)) if v is not None}
    try:
        config = load_config(args.config, overrides)
        path = train(config)
    except VIDiffError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
