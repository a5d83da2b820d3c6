"""End-to-end training runs on the built-in corpus: outputs, resume, refusals, speaker-dependent folds."""
import csv
import json
import subprocess
import sys

import pytest

pytest.importorskip("safetensors")
pytest.importorskip("tqdm")

from gpuaug.train.run import RunConfig, run  # noqa: E402

TINY = {"channels": 8, "gru_units": 8, "dense_units": 8}
FAST = {"epochs": 2, "patience": 2, "batch_size": 16}


def _config(**kw):
    base = dict(data="synthetic:48", folds="speaker", augment="retaining", ratio=0.5, repeats=1, seed=3,
                model_config=TINY, train=FAST, max_folds=2, test_conditions=("clean", "noise:natural@0"))
    return RunConfig(**{**base, **kw})


def _metrics(results):
    return {c: [p["uar"] for p in v["per_repeat"]] + [p["wa"] for p in v["per_repeat"]]
            for c, v in results["pooled"].items()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return out, run(_config(), out, progress=False)


def test_outputs(finished):
    out, results = finished
    for name in ("config.json", "results.json", "results.csv", "conditions.csv", "learning_curves.png"):
        assert (out / name).is_file(), name
    assert results["protocol"]["speaker_independent"] is True
    assert set(results["pooled"]) == {"clean", "noise:natural@0"}
    assert set(results["breakdown"]["noise:natural@0"]) == {"noise:natural@0dB"}
    assert set(results["breakdown"]["clean"]) == {"clean"}
    for fold in results["folds"]:
        assert (out / "repeat0" / fold["fold"] / "best.safetensors").is_file()
        assert len(fold["sha256"]) == 64
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 2 * 2 and {r["condition"] for r in rows} == {"clean", "noise:natural@0"}
    assert results["versions"]["torch"] and results["config"]["augment"] == "retaining"
    assert results["timing"]["augment_cpu_s"] > 0 and 0 < results["timing"]["augment_share_wall"] < 1
    assert len(results["significance"]) == 1 and results["significance"][0]["a"] == "noise:natural@0"


def test_emobox_files(finished):
    out, results = finished
    fold = results["folds"][0]["fold"]
    folder = out / "emobox" / "repeat0" / fold / "clean"
    preds = [json.loads(line) for line in open(folder / "predictions.jsonl")]
    labels = [json.loads(line) for line in open(folder / "labels.jsonl")]
    assert [p["key"] for p in preds] == [lab["key"] for lab in labels]
    assert all(p["key"].startswith("synthetic-synthetic-") or p["key"].startswith("synthetic-") for p in preds)
    wa = sum(p["pred"] == lab["label"] for p, lab in zip(preds, labels)) / len(preds)
    text = (folder / "score.txt").read_text()
    assert f"Overall WA     {wa:.4f}" in text and "Overall UA" in text and "Overall Macro-F1" in text


def test_resume_gives_the_uninterrupted_results(finished, tmp_path):
    out, results = finished
    second = results["folds"][1]["fold"]
    first_ckpt = out / "repeat0" / results["folds"][0]["fold"] / "best.safetensors"
    stamp = first_ckpt.stat().st_mtime_ns
    (out / "repeat0" / second / "result.json").unlink()  # as if interrupted during the second fold
    resumed = run(_config(), out, progress=False)
    assert first_ckpt.stat().st_mtime_ns == stamp  # the finished fold was not retrained
    assert _metrics(resumed) == _metrics(results)
    assert _metrics(run(_config(), tmp_path / "fresh", progress=False)) == _metrics(results)


def test_tampered_checkpoint_is_retrained(finished, capsys):
    out, results = finished
    ckpt = out / "repeat0" / results["folds"][0]["fold"] / "best.safetensors"
    raw = bytearray(ckpt.read_bytes())
    raw[-1] ^= 0xFF
    ckpt.write_bytes(bytes(raw))
    again = run(_config(), out, progress=False)
    assert "retraining" in capsys.readouterr().err
    assert _metrics(again) == _metrics(results)


def test_other_configuration_in_the_same_folder_is_refused(finished):
    out, _ = finished
    with pytest.raises(ValueError, match="another configuration"):
        run(_config(seed=4), out, progress=False)


def test_fold_file_sharing_speakers_is_labelled_speaker_dependent(tmp_path, capsys):
    from gpuaug.train.corpora import open_corpus

    corpus = open_corpus("synthetic:48")
    path = tmp_path / "folds.csv"
    with open(path, "w") as f:  # items alternate between train and test: every speaker on both sides
        f.write("utterance,fold,split\n")
        for i, u in enumerate(corpus.utterances):
            f.write(f"{u},1,{'test' if i % 3 == 0 else ('valid' if i % 3 == 1 else 'train')}\n")
    results = run(_config(folds=f"file:{path}", test_conditions=("clean",)), tmp_path / "out", progress=False)
    assert results["protocol"]["speaker_independent"] is False
    assert "SPEAKER-DEPENDENT" in capsys.readouterr().err


def test_import_gpuaug_does_not_import_the_trainer():
    code = "import sys, gpuaug; print(any(m.startswith('gpuaug.train') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() \
        == "False"


def test_cli_errors_are_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "gpuaug", "train", "--data", "nowhere:x", "--out", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "gpuaug train: error:" in r.stderr and "Traceback" not in r.stderr


def test_iemocap_tree_trains_with_session_folds(tmp_path):
    from test_corpora import _iemocap_tree

    root = _iemocap_tree(tmp_path / "IEMOCAP_full_release")
    results = run(_config(data=f"iemocap:{root}", folds="session", augment="none", max_folds=1,
                          test_conditions=("clean",)), tmp_path / "out", progress=False)
    fold = results["folds"][0]
    assert results["corpus"]["name"] == "iemocap" and fold["speaker_independent"]
    assert (fold["train_items"], fold["valid_items"], fold["test_items"]) == (12, 4, 4)  # 3 / 1 / 1 sessions
    assert results["pooled"]["clean"]["uar"]["n"] == 1


@pytest.mark.real_data
def test_emodb_fold_trains(shared_data, tmp_path):
    results = run(_config(data=f"emodb:{shared_data / 'emodb'}", augment="none", max_folds=1,
                          train={"epochs": 1, "batch_size": 32}, test_conditions=("clean", "noise:interior@0"),
                          noise_dir=str(shared_data / "noise")), tmp_path / "out", progress=False)
    fold = results["folds"][0]
    assert fold["test_speakers"] == ["03"] and fold["test_items"] == 49 and fold["speaker_independent"]
    assert len(results["corpus"]["classes"]) == 7
    keys = [json.loads(line)["key"] for line in open(tmp_path / "out" / "emobox" / "repeat0" / "speaker-03" /
                                                       "clean" / "labels.jsonl")]
    assert all(k.startswith("emodb-03") for k in keys)  # EmoBox's key spelling


def test_manifest_corpus_trains(tmp_path):
    import numpy as np
    import soundfile as sf

    g = np.random.default_rng(0)
    rows = ["path,label,speaker,valence,activation,dominance"]
    for i in range(12):
        sf.write(tmp_path / f"c{i}.wav", (0.1 * g.standard_normal(12000)).astype(np.float32), 24000)
        rows.append(f"c{i}.wav,{'happy' if i % 2 else 'sad'},s{i % 3},{4 if i % 2 else 2},3,3")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    results = run(_config(data=f"manifest:{tmp_path / 'm.csv'}", augment="none", max_folds=1,
                          test_conditions=("clean",)), tmp_path / "out", progress=False)
    fold = results["folds"][0]
    assert results["corpus"]["name"] == "manifest" and fold["speaker_independent"]
    assert (fold["train_items"], fold["valid_items"], fold["test_items"]) == (4, 4, 4)


def test_grid_tests_the_configuration_with_the_best_validation_uar(tmp_path, monkeypatch):
    import gpuaug.train.run as run_module
    from gpuaug.train.model import grid_configs

    calls = []

    def two(base):  # the Table 1 grid at two points (the full 72 are too slow for a test)
        calls.append(base)
        return grid_configs(base, {"gru_units": (4, 8)})

    monkeypatch.setattr(run_module, "grid_configs", two)
    results = run(_config(grid=True, max_folds=1, test_conditions=("clean",)), tmp_path / "out", progress=False)
    fold = json.loads((tmp_path / "out" / "repeat0" / results["folds"][0]["fold"] / "result.json").read_text())
    assert len(calls) == 1 and [g["model_config"]["gru_units"] for g in fold["grid"]] == [4, 8]
    best = max(fold["grid"], key=lambda g: (g["valid_uar"], -g["valid_loss"]))
    assert fold["model_config"] == best["model_config"] and fold["valid_uar"] == best["valid_uar"]


def test_compare_runs_pairs_folds(finished, tmp_path):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "benchmarks"))
    from compare_runs import compare

    out, results = finished
    other = tmp_path / "other"
    run(_config(seed=4), other, progress=False)
    cmp = compare(out, other)
    assert len(cmp["pairs"]) == 2 and [t["condition"] for t in cmp["tests"]] == ["clean", "noise:natural@0"]
    a = {(f["repeat"], f["fold"]): f["conditions"]["clean"]["uar"] for f in results["folds"]}
    b = {(f["repeat"], f["fold"]): f["conditions"]["clean"]["uar"]
         for f in json.loads((other / "results.json").read_text())["folds"]}
    common = sorted(set(a) & set(b))
    diff = sum(b[k] - a[k] for k in common) / len(common)
    assert abs(cmp["tests"][0]["mean_diff"] - diff) < 1e-12 and cmp["tests"][0]["m"] == 2
