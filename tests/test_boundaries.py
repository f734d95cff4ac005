"""Layering: vidiff_model never imports the host (ComfyUI), its training never imports vidiff_model.mini, nothing
in the library imports the GPU run (vidiff_model.device_run), and no package imports in a circle."""

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
HOST_MODULES = {"comfy", "comfy_api", "comfy_extras", "comfy_execution", "folder_paths", "nodes", "server",
                "latent_preview", "execution", "node_helpers"}


def _imports(path: pathlib.Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_library_sources_import_no_host_module():
    files = sorted((ROOT / "vidiff_model").rglob("*.py"))
    assert len(files) > 5
    offenders = {str(f.relative_to(ROOT)): sorted(_imports(f) & HOST_MODULES) for f in files}
    assert not {f: m for f, m in offenders.items() if m}


def test_library_imports_with_host_modules_blocked():
    """Import every library module in a fresh interpreter where importing a host module fails."""
    code = f"""
import importlib, pkgutil, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {sorted(HOST_MODULES)!r}:
            raise ImportError('host module imported: ' + name)
sys.meta_path.insert(0, Block())
import vidiff_model
for m in pkgutil.walk_packages(vidiff_model.__path__, 'vidiff_model.'):
    if m.name != 'vidiff_model.__main__':
        importlib.import_module(m.name)
print('ok', len(sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("ok")


def _absolute_imports(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module `source` (the text of `module`, a dotted name) imports, relative imports resolved,
    `from X import name` counted as both X and X.name, importlib.import_module("...") included."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            full = ".".join(base + (node.module.split(".") if node.module else []))
            found |= {full} | {f"{full}.{a.name}" for a in node.names}
        elif (isinstance(node, ast.Call)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.add(node.args[0].value)
    return found


def _imports_mini(names: set[str]) -> set[str]:
    return {n for n in names if n == "vidiff_model.mini" or n.startswith("vidiff_model.mini.")}


def test_the_check_sees_every_way_of_importing_mini():
    here = "vidiff_model.training.latent_clips"
    for line in ("from ..mini.tasks import instructions", "from .. import mini", "from ..mini import tasks",
                 "import vidiff_model.mini.styles", "from vidiff_model.mini import tasks",
                 "def f():\n    from ..mini.styles import STYLES",
                 "importlib.import_module('vidiff_model.mini.tasks')"):
        assert _imports_mini(_absolute_imports(line, here)), line
    assert _imports_mini(_absolute_imports("from ..mini import x", "vidiff_model.training", is_package=True))
    for line in ("from ..config import mini_config", "from .templates import instructions", "import minimal"):
        assert not _imports_mini(_absolute_imports(line, here)), line


def test_training_never_imports_the_mini_package():
    """Layering: vidiff_model.mini (the small model: data, styles, tasks) builds on training, never
    the reverse; the presets the `latents` source trains on live in training.templates."""
    files = sorted((ROOT / "vidiff_model" / "training").rglob("*.py"))
    assert len(files) > 5
    offenders = {}
    for f in files:
        parts = f.relative_to(ROOT).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        imported = _absolute_imports(f.read_text(), module, is_package)
        offenders[str(f.relative_to(ROOT))] = sorted(_imports_mini(imported))
    assert not {f: m for f, m in offenders.items() if m}


def _import_cycle(package: str) -> list[str]:
    """One import cycle among the modules of `package` (dotted; its folder under ROOT), function-level imports
    included; [] when there is none. The package's own __init__ is left out: importing a submodule runs it
    anyway."""
    folder = ROOT.joinpath(*package.split("."))
    modules = {f"{package}.{f.stem}": f for f in sorted(folder.glob("*.py")) if f.stem != "__init__"}
    edges = {m: sorted(_absolute_imports(f.read_text(), m) & modules.keys() - {m}) for m, f in modules.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> list[str]:
        state[m] = 1
        for n in edges[m]:
            if state.get(n) == 1:
                return path[path.index(n):] + [m, n] if n in path else [m, n]
            if n not in state and (cycle := visit(n, path + [m])):
                return cycle
        state[m] = 2
        return []

    for m in modules:
        if m not in state and (cycle := visit(m, [])):
            return cycle
    return []


def test_the_cycle_check_finds_a_cycle(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "pack").mkdir()
    (tmp_path / "pack" / "a.py").write_text("from .b import x\n")
    (tmp_path / "pack" / "b.py").write_text("def f():\n    from .a import y\n")
    (tmp_path / "pack" / "c.py").write_text("from . import a\n")
    assert sorted(set(_import_cycle("pack"))) == ["pack.a", "pack.b"]


def test_nodes_has_no_import_cycle():
    """Every node file stands above what it uses: no circle of imports in nodes/ (lazy imports count)."""
    assert _import_cycle("nodes") == []


def test_the_gpu_run_has_no_import_cycle():
    assert _import_cycle("vidiff_model.device_run") == []


def test_only_the_gpu_run_imports_itself():
    """vidiff_model.device_run (packing, wheels, stages, the run) builds on vidiff_model.mini and training;
    the model, its training and the rest of the library never import it."""
    run = "vidiff_model.device_run"
    files = [f for f in sorted((ROOT / "vidiff_model").rglob("*.py")) if "device_run" not in f.relative_to(ROOT).parts]
    assert len(files) > 5 and any(f.parent.name == "mini" for f in files)
    offenders = {}
    for f in files:
        parts = f.relative_to(ROOT).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        imported = _absolute_imports(f.read_text(), module, is_package)
        offenders[str(f.relative_to(ROOT))] = sorted(n for n in imported if n == run or n.startswith(run + "."))
    assert not {f: m for f, m in offenders.items() if m}
