"""The one hard rule: vidiff_model never imports the host (ComfyUI)."""

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
