"""`python -m vidiff_model.remote`: see cli.py."""

import sys

from .cli import main

if __name__ == "__main__":  # guarded: the library import test imports every module
    sys.exit(main())
