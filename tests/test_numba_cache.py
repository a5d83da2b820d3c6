"""On-disk JIT cache of the Numba kernels (:mod:`gpuaug.kernels._numba_glue`): where it goes
(in-tree, ``NUMBA_CACHE_DIR``, the user cache for a read-only installation), that later
processes load instead of compiling (``parallel=True`` kernels included), and that an edit
of a module whose jitted helper another module inlines recompiles the caller (no stale code).

Each case runs fresh processes on a copy of the package laid out as installed
(``gpuaug/`` with ``gpuaug/kernels/``), so the working tree's caches are not touched.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_PROBE = textwrap.dedent("""
    import json, sys
    import torch
    import gpuaug.kernels as K
    from gpuaug.functional.gain import gain
    from gpuaug.functional.speed import speed_segment
    from gpuaug.kernels import elementwise as ew, segment_warp as sw, warp_sinc as ws
    w = torch.linspace(-1, 1, 2 * 900, dtype=torch.float32).reshape(2, 900).sin()
    L = torch.tensor([900, 700])
    g, _ = gain(w, L, gain_db=1.5, backend="numba")
    s, _ = speed_segment(w, L, start=100, length=300, factor=1.25, backend="numba")
    out = {"package": K.__file__, "checksum": float(s.double().abs().sum()) + float(g.double().sum())}
    for name, disp in (("gain", ew._gain_cpu), ("segment", sw._segment_cpu)):
        st = disp.stats
        out[name] = {"path": st.cache_path, "hits": sum(st.cache_hits.values()), "misses": sum(st.cache_misses.values()),
                     "cache": type(disp._cache).__name__}
    if len(sys.argv) > 1:  # the CUDA dispatchers (real target): gpuaug's cache class and location
        out["cuda_cache"] = type(ws._warp_cuda._cache).__name__
        out["cuda_path"] = ws._warp_cuda._cache.cache_path
    print(json.dumps(out))
""")


def _install_copy(dest: Path) -> Path:
    """``dest/site/gpuaug`` (+ ``kernels``) as pip installs it; returns the site folder."""
    site = dest / "site"
    shutil.copytree(ROOT / "gpuaug", site / "gpuaug", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "kernels", site / "gpuaug" / "kernels", ignore=shutil.ignore_patterns("__pycache__"))
    return site


def _run(site: Path, home: Path, *extra, **env_changes) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(PYTHONPATH=str(site), HOME=str(home), NUMBA_ENABLE_CUDASIM="1")
    env.update(env_changes)
    res = subprocess.run([sys.executable, "-c", _PROBE, *extra], env=env, capture_output=True, text=True,
                         timeout=600, cwd=home)
    assert res.returncode == 0, res.stderr[-4000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["package"].startswith(str(site)), out["package"]  # the copy, not the working tree
    return out


def _read_only(folder: Path) -> None:
    for p in [folder, *folder.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _writable(folder: Path) -> None:
    for p in [folder, *folder.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_read_only_installation_caches_in_the_user_cache(tmp_path):
    site = _install_copy(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    kernels = site / "gpuaug" / "kernels"
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # root writes into read-only folders: block
        (kernels / "__pycache__").write_text("")  # __pycache__ (a file) the way a read-only one is
    _read_only(site)
    try:
        first = _run(site, home)
        second = _run(site, home)
    finally:
        _writable(site)
    user_cache = home / ".cache" / "gpuaug" / "numba"
    for name in ("gain", "segment"):  # both parallel=True kernels
        assert first[name]["cache"] == "CPUCache"
        assert first[name]["path"].startswith(str(user_cache)), first[name]
        assert first[name]["misses"] == 1 and first[name]["hits"] == 0
        assert second[name]["hits"] == 1 and second[name]["misses"] == 0, second
    assert first["checksum"] == second["checksum"]
    assert not list(kernels.rglob("*.nbi"))


def test_numba_cache_dir_is_respected_and_in_tree_is_the_default(tmp_path):
    site = _install_copy(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    user_dir = tmp_path / "numba-cache"
    out = _run(site, home, NUMBA_CACHE_DIR=str(user_dir))
    assert out["gain"]["path"].startswith(str(user_dir)) and list(user_dir.rglob("*.nbi"))
    assert not list((site / "gpuaug" / "kernels").glob("__pycache__/*.nbi"))
    out = _run(site, home, NUMBA_ENABLE_CUDASIM="0")  # default: next to the modules; real CUDA target
    in_tree = site / "gpuaug" / "kernels" / "__pycache__"
    assert out["gain"]["path"] == str(in_tree) and out["gain"]["misses"] == 1
    assert list(in_tree.glob("elementwise._gain_cpu-*.nbi"))
    assert not (home / ".cache" / "gpuaug").exists()
    out = _run(site, home, "cuda", NUMBA_ENABLE_CUDASIM="0")
    assert out["gain"]["hits"] == 1 and out["cuda_cache"] == "KernelCUDACache" and out["cuda_path"] == str(in_tree)


def test_editing_a_callee_module_recompiles_its_callers(tmp_path):
    """``segment_warp`` inlines ``warp_sinc``'s jitted sinc point: an edit of ``warp_sinc.py``
    alone must not leave the cached segment kernel stale (Numba alone would keep it)."""
    site = _install_copy(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    first = _run(site, home)
    warm = _run(site, home)
    assert warm["segment"]["hits"] == 1 and warm["checksum"] == first["checksum"]
    callee = site / "gpuaug" / "kernels" / "warp_sinc.py"
    text = callee.read_text()
    assert text.count("    return num / den\n") == 1
    callee.write_text(text.replace("    return num / den\n", "    return 2.0 * num / den\n"))
    edited = _run(site, home)
    assert edited["segment"]["misses"] == 1 and edited["segment"]["hits"] == 0
    assert edited["gain"]["misses"] == 1  # one stamp for all kernel modules: every kernel recompiles once
    assert edited["checksum"] != first["checksum"]  # the new sinc point runs
