"""Put the carried wheels of a device pack on the path: unpack those the interpreter lacks into a folder.

    python -m vidiff_model.device_run.wheels device_pack/wheels runs/device/site [--force diffusers]

The lent GPU machine has torch, transformers, accelerate and friends but no diffusers and no network, so
`scripts/device_pack.sh` carries the missing wheels and `scripts/device_run.sh` runs this (standard library
only: it must work before anything is installed), then puts the folder on PYTHONPATH. A wheel is unpacked
only when its distribution is not installed already, so the machine's own packages (built for its torch)
stay in charge; unpacking a wheel is what pip does for a pure-Python one (plus the `.data/purelib`
move). `--force NAME` unpacks NAME even when it is installed (the CPU test uses it to exercise this path).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shutil
import sys
import zipfile
from pathlib import Path


def wheel_distribution(wheel: Path) -> tuple[str, str]:
    """(distribution, version) from a wheel's file name, e.g. `diffusers-0.42.1-py3-none-any.whl`."""
    parts = wheel.name.split("-")
    if not wheel.name.endswith(".whl") or len(parts) < 5:
        raise ValueError(f"{wheel}: not a wheel file name (NAME-VERSION-PY-ABI-PLATFORM.whl)")
    return parts[0], parts[1]


def installed_version(dist: str, exclude: Path | None = None) -> str | None:
    """The version of `dist` this interpreter can import, not counting the folder `exclude`."""
    paths = [p for p in sys.path if exclude is None or Path(p or ".").resolve() != exclude.resolve()]
    found = next(iter(importlib.metadata.distributions(name=dist, path=paths)), None)
    return None if found is None else found.version


def unpack(wheel: Path, site: Path) -> None:
    """Extract a wheel into `site` as an installer would: its `.data/purelib` and `.data/platlib` contents
    join the top level; scripts and headers are left out (nothing here runs them)."""
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    for data in site.glob("*.data"):
        for lib in ("purelib", "platlib"):
            if (data / lib).is_dir():
                for item in (data / lib).iterdir():
                    target = site / item.name
                    if target.exists():
                        shutil.rmtree(target) if target.is_dir() else target.unlink()
                    item.rename(target)
        shutil.rmtree(data)


def install_missing(wheels: Path, site: Path, force: tuple[str, ...] = ()) -> dict[str, str]:
    """Unpack every wheel in `wheels` whose distribution is missing (or named in `force`) into `site`.

    Args:
        wheels: a folder of `.whl` files.
        site: the target folder (created); it goes on PYTHONPATH afterwards.
        force: distribution names to unpack even when installed.
    Returns:
        {distribution: "unpacked VERSION" | "already in SITE" | "installed VERSION (kept)"}.
    """
    if not wheels.is_dir():
        raise FileNotFoundError(f"{wheels}: no wheel folder here; run scripts/device_pack.sh on the CPU machine "
                                "first and carry its output")
    site.mkdir(parents=True, exist_ok=True)
    wanted = {f.lower().replace("-", "_") for f in force}
    report = {}
    for wheel in sorted(wheels.glob("*.whl")):
        dist, version = wheel_distribution(wheel)
        if (site / f"{dist}-{version}.dist-info").is_dir():
            report[dist] = "already in site"
            continue
        have = installed_version(dist, exclude=site)
        if have is not None and dist.lower() not in wanted:
            report[dist] = f"installed {have} (kept)"
            continue
        unpack(wheel, site)
        report[dist] = f"unpacked {version}"
    (site / "device_wheels.json").write_text(json.dumps(report, indent=1))
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vidiff_model.device_run.wheels", description=__doc__.split("\n")[0])
    p.add_argument("wheels", type=Path, help="the pack's wheel folder, e.g. device_pack/wheels")
    p.add_argument("site", type=Path, help="where to unpack, e.g. runs/device/site (then put it on PYTHONPATH)")
    p.add_argument("--force", default="", help="comma-separated distributions to unpack even when installed")
    a = p.parse_args(argv)
    try:
        report = install_missing(a.wheels, a.site, tuple(f for f in a.force.split(",") if f))
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for dist, what in report.items():
        print(f"  {dist}: {what}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
