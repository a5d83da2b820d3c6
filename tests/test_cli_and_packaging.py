"""The README's main job (demo CLI) and the package layout (kernels ship inside gpuaug)."""
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from gpuaug.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_and_reports(tmp_path, capsys):
    out = tmp_path / "summary.json"
    assert main(["demo", "--clips", "8", "--batch-size", "4", "--epochs", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "clips/s" in text and "perception tags" in text
    summary = json.loads(out.read_text())
    assert summary["clips"] == 8 and summary["x_realtime"] > 0
    assert set(summary["tags"]) <= {"clean", "retaining"}


def test_policy_command(capsys):
    assert main(["policy"]) == 0
    assert "speed_utterance" in capsys.readouterr().out


def test_wheel_ships_kernels_inside_the_package(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("gpuaug", "kernels"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    code = "from setuptools import build_meta as b; print(b.build_wheel(%r))" % str(tmp_path)
    res = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    wheel = tmp_path / res.stdout.strip().splitlines()[-1]
    names = zipfile.ZipFile(wheel).namelist()
    assert "gpuaug/kernels/__init__.py" in names
    assert "gpuaug/policy/perception_study.csv" in names
    assert not any(n.startswith("kernels/") for n in names)
