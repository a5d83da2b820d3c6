"""benchmarks/ratios.py on the committed CPU results: the tables restate the JSON's own ratios."""
import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = sorted((ROOT / "benchmarks" / "results").glob("*-bench.json")) + sorted(
    (ROOT / "benchmarks" / "results").glob("*-grid.json"))


def _ratios_module():
    spec = importlib.util.spec_from_file_location("bench_ratios", ROOT / "benchmarks" / "ratios.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_tables_restate_the_measurements(path):
    result = json.loads(path.read_text())
    text = _ratios_module().tables(result)
    ok = [r for r in result["measurements"] if r.get("status") == "ok"]
    refs = [r for r in ok if r["peer"] == "gpuaug[auto]"]
    assert refs
    for ref in refs:
        line = next(l for l in text.splitlines() if l.startswith(f"| {ref['batch_size']} x {ref['seconds']:g} |")
                    and f"| {ref['clips_per_s']:.1f} |" in l)
        others = [r for r in ok if (r["pipeline"], r["batch_size"], r["seconds"]) ==
                  (ref["pipeline"], ref["batch_size"], ref["seconds"]) and r["peer"] != "gpuaug[auto]"]
        for r in others:  # stored ratio = clips/s of gpuaug[auto] / clips/s of the row
            assert r["gpuaug_speedup"] == pytest.approx(ref["clips_per_s"] / r["clips_per_s"], rel=1e-6)
            assert f"{r['gpuaug_speedup']:.2f}x" in line
    assert re.search(r"Range: .*\d\.\d\d-\d+\.\d\dx", text)
