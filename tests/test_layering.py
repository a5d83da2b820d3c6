"""The package has no import cycles: each layer imports only the layers below it (issue 10 C).

Layers, bottom up: the foundations (``_sync``, ``_workspace``, ``_allocator``, ``random``, ``backend``, ``sync_count``,
``audio_io``, ``banks``, ``kernels``) -> ``functional`` -> ``policy`` -> ``transforms`` ->
``presets`` -> ``data`` -> ``train`` -> ``cli``. Checked on the source (every ``import`` statement, also
inside functions), so a lazy ``__getattr__`` work-around cannot hide a cycle.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

import gpuaug

ROOT = Path(gpuaug.__file__).parent
LAYERS = [
    {"_sync", "_workspace", "_allocator", "random", "backend", "sync_count", "audio_io", "banks", "kernels"},
    {"functional"}, {"policy"}, {"transforms"}, {"presets"}, {"data"}, {"train"}, {"cli", "__main__"},
]


def _layer(top: str) -> int:
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"gpuaug.{top} is in no layer of this test: add it to LAYERS")


def _imports(path: Path):
    """Top-level gpuaug subpackages imported by ``path`` (absolute or relative imports)."""
    rel = path.relative_to(ROOT.parent).with_suffix("").parts  # ("gpuaug", "data", "collate")
    package = rel[:-1] if path.name != "__init__.py" else rel[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                parts = base + (node.module.split(".") if node.module else [])
                if len(parts) == 1:  # "from .. import x": x is the subpackage
                    for a in node.names:
                        yield a.name
                    continue
            else:
                parts = (node.module or "").split(".")
            if parts[0] == "gpuaug" and len(parts) > 1:
                yield parts[1]
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "gpuaug" and len(parts) > 1:
                    yield parts[1]


def test_layers_import_only_downwards():
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts == ("__init__",):
            continue  # the package root exports everything
        own = _layer(parts[0])
        for top in _imports(path):
            if top != parts[0] and _layer(top) > own:
                bad.append(f"{path.relative_to(ROOT)} imports gpuaug.{top}")
    assert not bad, bad


def test_layering_check_can_fail(tmp_path):
    f = ROOT / "policy" / "_layering_probe.py"
    f.write_text("from ..transforms import Pipeline\n")
    try:
        with pytest.raises(AssertionError, match="policy/_layering_probe.py imports gpuaug.transforms"):
            test_layers_import_only_downwards()
    finally:
        f.unlink()


def test_no_lazy_module_getattr():
    lazy = [str(p.relative_to(ROOT)) for p in ROOT.rglob("__init__.py") if "def __getattr__" in p.read_text()]
    assert not lazy


@pytest.mark.parametrize("module", ["gpuaug.banks", "gpuaug.policy", "gpuaug.transforms", "gpuaug.presets",
                                    "gpuaug.data", "gpuaug.data.collate", "gpuaug.cli"])
def test_each_module_imports_first(module):
    """Importing any module first (a fresh interpreter) works: no order-dependent cycle."""
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=120)


def test_quick_start_needs_one_import():
    for name in ("Pipeline", "AddNoise", "Reverb", "Bank", "noise_bank_from_folder", "perception_retaining",
                 "AugmentCollate", "DeviceLoader", "LabelPolicy", "build_preset", "pad_batch"):
        assert hasattr(gpuaug, name), name
