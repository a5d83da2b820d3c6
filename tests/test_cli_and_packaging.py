"""The README's main job (demo CLI) and the package layout (kernels ship inside gpuaug)."""
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from gpuaug.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_and_reports(tmp_path, capsys):
    out = tmp_path / "summary.json"
    args = ["demo", "--clips", "8", "--batch-size", "4", "--epochs", "1", "--workers", "0", "--json", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "clips/s" in text and "perception tags" in text
    summary = json.loads(out.read_text())
    assert summary["clips"] == 8 and summary["x_realtime"] > 0
    assert set(summary["tags"]) <= {"clean", "retaining"}


def test_augment_writes_wavs_and_params(tmp_path):
    import soundfile as sf

    assert main(["augment", "--out", str(tmp_path), "--clips", "3", "--preset", "seed000:Laugh",
                 "--on-altering", "relabel"]) == 0
    meta = json.loads((tmp_path / "params.json").read_text())
    assert len(meta["clips"]) == 3
    for entry in meta["clips"]:
        assert entry["tag"] == "altering" and entry["label_action"] == "relabel"
        assert entry["record"][0]["insert_category_name"] == "laugh"
        aug, sr = sf.read(tmp_path / entry["file"])
        clean, _ = sf.read(tmp_path / entry["clean"])
        assert sr == 16000 and len(aug) > len(clean)
    files = sorted(p.name for p in tmp_path.glob("*.wav"))
    assert main(["augment", str(tmp_path / files[0]), "--out", str(tmp_path / "again"), "--preset", "mcadams"]) == 0
    assert (tmp_path / "again" / "params.json").exists()


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
    for init in (ROOT / "gpuaug").rglob("__init__.py"):  # every subpackage ships
        assert init.relative_to(ROOT).as_posix() in names, init
    assert "gpuaug/policy/perception_study.csv" in names
    assert not any(n.startswith("kernels/") for n in names)
