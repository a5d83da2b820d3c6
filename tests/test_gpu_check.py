"""The GPU check's dry run (every stage on the CPU, tiny sizes), so the one-command GPU check
(``bash benchmarks/gpu_check.sh``) cannot rot where CI has no GPU."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FILES = {"summary.json", "pytest.json", "pytest-junit.xml", "kernels.json", "overhead.json", "bench.json",
         "memory.json", "gpu-check.log"}


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-check")
    env = {**os.environ, "PYTHON": sys.executable, "GPU_CHECK_OUT": str(out)}
    env.pop("OUT", None)
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--dry-run"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=400)
    return proc, out


def _load(out, name):
    return json.loads((out / name).read_text())


def test_dry_run_succeeds_and_writes_every_file(dry_run):
    proc, out = dry_run
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    names = {p.name for p in out.iterdir()}
    assert names == FILES  # the device tool brings back at most 8 files
    summary = _load(out, "summary.json")
    assert {"started_utc", "finished_utc", "dry_run", "device", "budget_s", "env", "stages", "ok"} <= summary.keys()
    assert summary["dry_run"] is True and summary["ok"] is True and summary["device"] == "cpu"
    assert list(summary["stages"]) == ["pytest", "kernels", "overhead", "bench", "memory"]
    for name, stage in summary["stages"].items():
        assert stage["status"] == "ok", (name, stage)
        assert {"budget_s", "wall_s", "rc", "timed_out", "file"} <= stage.keys()
    assert {"versions", "device_name", "backends_available"} <= summary["env"].keys()


def test_stage_files_have_the_expected_keys(dry_run):
    _, out = dry_run
    pt = _load(out, "pytest.json")
    assert pt["complete"] and pt["exit_status"] == 0 and pt["counts"].get("passed", 0) > 0 and pt["failed"] == []
    assert "<testsuite" in (out / "pytest-junit.xml").read_text()

    k = _load(out, "kernels.json")
    assert k["complete"] and k["failed"] == []
    ops = {c["op"] for c in k["cases"]}
    sys.path.insert(0, str(REPO / "benchmarks"))
    import gpu_check

    assert ops == {c.name for c in gpu_check.OP_CASES}
    for c in k["cases"]:
        assert {"backend", "ok", "rel_err_vs_f64", "rel_diff_vs_cpu_f32", "lengths_equal", "padding_zero", "nan",
                "run_to_run_equal", "strided_equal", "ms_median", "tol"} <= c.keys(), c
    assert {("numba", "gain"), ("torch", "reverb")} <= {(c["backend"], c["op"]) for c in k["cases"]}

    o = _load(out, "overhead.json")
    assert {"augmentation", "train_step", "overhead_percent", "model"} <= o.keys()
    assert o["model"]["requested"] == "wav2vec2-tiny"
    missing = "wav2vec2-tiny skipped: transformers missing"
    assert o["model"]["name"] == "wav2vec2-tiny" or o["model"]["skipped"] == missing

    b = _load(out, "bench.json")
    assert b["pipelines_done"] == ["retaining"] and b["measurements"]
    assert all(m["status"] == "ok" and m["clips_per_s"] > 0 for m in b["measurements"])

    m = _load(out, "memory.json")
    assert m["flat"] and m["batches_done"] == m["batches"] and len(m["samples"]) >= 2 and "rss" in m["verdict"]
