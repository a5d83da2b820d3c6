"""``gpuaug augment`` never loses or half-writes files (issue 10, A1): arguments are checked
before any work, a non-empty --out is refused, the output appears atomically and complete."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gpuaug.cli import augment, main

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--preset", "seed004:pitch", "--clips", "2"]


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".gpuaug-" in p.name)


def _one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("augment ")]
    assert len(err) == 1 and err[0].startswith("gpuaug augment: error: "), err
    return err[0]


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the command gets as far as loading banks."""
    def boom(*a, **k):
        raise AssertionError("work started before the arguments were checked")
    monkeypatch.setattr(augment, "load_banks", boom)


def _exactly_listed(out: Path) -> dict:
    meta = json.loads((out / "params.json").read_text())
    on_disk = sorted(p.name for p in out.iterdir() if p.name != "params.json")
    listed = sorted({e[k] for e in meta["clips"] for k in ("file", "clean")})
    assert on_disk == listed == meta["files"]
    return meta


def test_non_empty_out_is_refused_and_left_untouched(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["augment", "--out", str(out), *FAST]) == 0
    before = _snapshot(out)
    assert main(["augment", "--out", str(out), "--preset", "seed004:pitch", "--clips", "1"]) == 2
    line = _one_error_line(capsys)
    assert "not empty" in line and "--overwrite" in line
    assert _snapshot(out) == before and _leftovers(tmp_path) == []


def test_overwrite_replaces_the_whole_previous_output(tmp_path):
    out = tmp_path / "out"
    assert main(["augment", "--out", str(out), "--preset", "seed004:pitch", "--clips", "3"]) == 0
    assert len(_exactly_listed(out)["clips"]) == 3
    assert main(["augment", "--out", str(out), "--preset", "seed004:pitch", "--clips", "1", "--overwrite"]) == 0
    meta = _exactly_listed(out)  # the 3-clip run's other wavs are gone, not left beside params.json
    assert len(meta["clips"]) == 1 and _leftovers(tmp_path) == []


def test_empty_existing_out_is_used(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert main(["augment", "--out", str(out), *FAST]) == 0
    assert len(_exactly_listed(out)["clips"]) == 2


def test_overwrite_never_deletes_a_users_folder(tmp_path, capsys, no_work):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    (out / "params.json").write_text("{}")
    before = _snapshot(out)
    assert main(["augment", "--out", str(out), *FAST, "--overwrite"]) == 2
    assert "not replaced even with --overwrite" in _one_error_line(capsys)
    assert _snapshot(out) == before


@pytest.mark.parametrize("extra,needle", [
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--batch-size", "-1"], "--batch-size must be >= 1"),
    (["--sample-rate", "0"], "--sample-rate must be a positive"),
    (["--clips", "0"], "--clips must be >= 1"),
    (["--preset", "nope"], "unknown --preset 'nope'"),
    (["--noise-dir", "/no/such/dir"], "--noise-dir /no/such/dir: no such folder"),
    (["EMPTY"], "no audio files"),
    (["MISSING.wav"], "no such file or folder"),
])
def test_bad_arguments_fail_before_any_work(tmp_path, capsys, no_work, extra, needle):
    (tmp_path / "empty_in").mkdir()
    extra = [str(tmp_path / "empty_in") if a == "EMPTY" else str(tmp_path / a) if a == "MISSING.wav" else a
             for a in extra]
    out = tmp_path / "new" / "out"
    assert main(["augment", "--out", str(out), *extra]) == 2
    assert needle in _one_error_line(capsys)
    assert not (tmp_path / "new").exists()


def test_out_is_a_file(tmp_path, capsys, no_work):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["augment", "--out", str(f)]) == 2
    assert "is not a folder" in _one_error_line(capsys) and f.read_text() == "x"


def test_unwritable_out_fails_before_any_work(capsys, no_work):
    if not Path("/sys/kernel").is_dir():
        pytest.skip("needs sysfs")
    assert main(["augment", "--out", "/sys", *FAST]) == 2  # exists and is not empty
    assert "not empty" in _one_error_line(capsys)
    assert main(["augment", "--out", "/sys/gpuaug_test_out/x", *FAST]) == 2  # sysfs refuses mkdir, even to root
    assert "cannot create the output folder" in _one_error_line(capsys)
    assert not Path("/sys/gpuaug_test_out").exists()


def test_pipeline_failing_midway_leaves_nothing(tmp_path, monkeypatch):
    from gpuaug.data.collate import AugmentCollate

    out = tmp_path / "out"
    assert main(["augment", "--out", str(out), *FAST]) == 0
    before = _snapshot(out)
    real_apply, calls = AugmentCollate.apply, []

    def flaky(self, batch):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("pipeline exploded")
        return real_apply(self, batch)

    monkeypatch.setattr(AugmentCollate, "apply", flaky)
    args = ["--preset", "seed004:pitch", "--clips", "3", "--batch-size", "1"]
    with pytest.raises(RuntimeError, match="pipeline exploded"):  # a bug: raised, after cleaning up
        main(["augment", "--out", str(tmp_path / "fresh" / "out"), *args])
    assert not (tmp_path / "fresh").exists()
    calls.clear()
    with pytest.raises(RuntimeError, match="pipeline exploded"):
        main(["augment", "--out", str(out), *args, "--overwrite"])
    assert _snapshot(out) == before and _leftovers(tmp_path) == []


def test_unreadable_input_is_a_clean_error(tmp_path, capsys):
    good = tmp_path / "in" / "good.wav"
    good.parent.mkdir()
    sf.write(str(good), np.zeros(8000, "float32") + 0.01, 16000)
    cut = tmp_path / "in" / "cut.wav"
    sf.write(str(cut), np.zeros(16000, "float32") + 0.01, 16000, subtype="PCM_16")
    cut.write_bytes(cut.read_bytes()[:1044])
    assert main(["augment", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--preset", "seed004:pitch"]) == 1
    assert "cut.wav is truncated" in _one_error_line(capsys)
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_output_inside_the_input_folder_is_not_read_back(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    sf.write(str(src / "a.wav"), np.zeros(8000, "float32") + 0.01, 16000)
    out = src / "aug"
    for extra in ([], ["--overwrite"]):
        assert main(["augment", str(src), "--out", str(out), "--preset", "seed004:pitch", *extra]) == 0
        assert len(_exactly_listed(out)["clips"]) == 1


def test_user_errors_print_no_traceback(tmp_path):
    res = subprocess.run([sys.executable, "-m", "gpuaug", "augment", "--out", str(tmp_path / "o"), "--batch-size", "0"],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip() == "gpuaug augment: error: --batch-size must be >= 1, got 0"
