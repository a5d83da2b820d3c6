"""Banks (issue 10): replay by item identity, silent items refused, category synonyms,
the source in ``describe()``, and the seeded category-stratified split."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from gpuaug.data import Bank, MissingBankItem, noise_bank_from_folder
from gpuaug.banks import content_hash, gather_ragged, hash_of_key, key_of_hash
from gpuaug.data.synthetic import synthetic_insert_bank, synthetic_noise_bank, synthetic_rir_bank
from gpuaug.presets import perception_retaining
from gpuaug.sync_count import count_syncs, mark_device
from gpuaug.transforms import AddNoise, InsertClip, Pipeline, Reverb

SR = 16000


def _write(path, seconds=0.3, seed=0, amplitude=0.3, sr=SR):
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sf.write(str(path), (amplitude * rng.standard_normal(int(seconds * sr))).astype(np.float32), sr, subtype="FLOAT")
    return path


def _speech(B=8, T=6000, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, generator=g) * 0.1, torch.tensor([T - 100 * b for b in range(B)])


def _roundtrip(records):
    return json.loads(json.dumps(records))  # records are plain JSON


def _noise_folder(tmp_path):
    root = tmp_path / "noise"
    for i, name in enumerate(["natural_rain", "natural_wind", "human_cough", "domestic_door", "domestic_clock"]):
        _write(root / f"{name}.wav", seconds=0.2 + 0.05 * i, seed=i)
    return root


def _clips(n, seed, length=700):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(length + 37 * i, generator=g) * 0.2 for i in range(n)]


# ------------------------------------------------------------------ A2: replay by identity


def test_noise_replay_after_a_file_is_added_uses_the_recorded_noises(tmp_path):
    root = _noise_folder(tmp_path)
    pipe = Pipeline([AddNoise(Bank.from_folder(root, SR), snr_db_choices=(0.0, 10.0))], sample_rate=SR)
    wave, lengths = _speech()
    out = pipe(wave, lengths, seed=3)
    records = _roundtrip(out.record)
    for name in ("natural_aaa", "human_aaa"):  # sort first: shift the indices and the counts
        _write(root / f"{name}.wav", seconds=0.4, seed=len(name))
    grown = Bank.from_folder(root, SR)
    again_pipe = Pipeline([AddNoise(grown, snr_db_choices=(0.0, 10.0))], sample_rate=SR)
    again = again_pipe(wave, lengths, params=again_pipe.params_from_records(records))
    assert [r[0]["noise_name"] for r in again.record] == [r[0]["noise_name"] for r in records]
    assert torch.equal(again.wave, out.wave)
    assert grown.fingerprint != pipe.leaves[0].bank.fingerprint
    for rec in records:
        e = rec[0]  # the leaf (an output-level entry may follow)
        assert len(e["noise_sha1"]) == 16 and e["noise_bank"] == pipe.leaves[0].bank.fingerprint
        assert isinstance(e["noise_id"], int) and hash_of_key(e["noise_id"]) == e["noise_sha1"]
    # the bank's params replay too (the resolved identity is in them)
    assert torch.equal(again_pipe(wave, lengths, params=out.params).wave, out.wave)


def test_noise_replay_raises_naming_a_removed_file(tmp_path):
    root = _noise_folder(tmp_path)
    pipe = Pipeline([AddNoise(Bank.from_folder(root, SR))], sample_rate=SR)
    wave, lengths = _speech()
    out = pipe(wave, lengths, seed=1)
    used = out.record[0][0]["noise_name"]
    (root / f"{used}.wav").unlink()
    smaller = Pipeline([AddNoise(Bank.from_folder(root, SR))], sample_rate=SR)
    with pytest.raises(MissingBankItem, match=used):
        smaller.params_from_records(_roundtrip(out.record))
    with pytest.raises(MissingBankItem, match=out.record[0][0]["noise_sha1"]):
        smaller(wave, lengths, params=out.params)  # params carry the numeric identity


def test_a_renamed_file_of_the_same_content_still_replays(tmp_path):
    root = _noise_folder(tmp_path)
    pipe = Pipeline([AddNoise(Bank.from_folder(root, SR))], sample_rate=SR)
    wave, lengths = _speech()
    out = pipe(wave, lengths, seed=5)
    for f in root.iterdir():
        f.rename(root / f"{f.stem}_v2.wav")
    again_pipe = Pipeline([AddNoise(Bank.from_folder(root, SR))], sample_rate=SR)
    assert torch.equal(again_pipe(wave, lengths, params=again_pipe.params_from_records(_roundtrip(out.record))).wave,
                       out.wave)


@pytest.mark.parametrize("kind", ["rir", "insert"])
def test_rir_and_insert_replay_by_identity(kind):
    base = synthetic_rir_bank(sample_rate=SR) if kind == "rir" else synthetic_insert_bank(sample_rate=SR)
    clips = [base.clip(i) for i in range(len(base))]
    cats = [base.category_names[c] for c in base.category_ids.tolist()]

    def make(bank):
        return Pipeline([Reverb(bank) if kind == "rir" else InsertClip(bank)], sample_rate=SR)

    pipe = make(base)
    wave, lengths = _speech()
    out = pipe(wave, lengths, seed=2)
    records = _roundtrip(out.record)
    extra = _clips(2, seed=7)
    if kind == "rir":
        extra = [torch.exp(-torch.arange(c.numel()) / (150.0 + 50 * i)) for i, c in enumerate(extra)]
    grown = Bank(extra + clips, cats[:1] * 2 + cats, SR, ["new0", "new1", *base.names])
    again = make(grown)(wave, lengths, params=make(grown).params_from_records(records))
    assert torch.equal(again.wave, out.wave) and torch.equal(again.lengths, out.lengths)
    key = "rir_name" if kind == "rir" else "insert_name"
    used = records[0][0][key]
    keep = [i for i, n in enumerate(base.names) if n != used]
    shrunk = Bank([clips[i] for i in keep], [cats[i] for i in keep], SR, [base.names[i] for i in keep])
    with pytest.raises(MissingBankItem, match=used):
        make(shrunk).params_from_records(records)
    with pytest.raises(MissingBankItem, match="sha1"):
        make(shrunk)(wave, lengths, params=out.params)


def test_bank_record_replaced_by_synthetic_rooms_is_refused():
    rir = synthetic_rir_bank(sample_rate=SR)
    out = Pipeline([Reverb(rir)], sample_rate=SR)(*_speech(), seed=0)
    with pytest.raises(ValueError, match="no bank"):
        Pipeline([Reverb()], sample_rate=SR).params_from_records(_roundtrip(out.record))


def test_replay_by_identity_costs_no_extra_sync():
    noise, rir, insert = synthetic_noise_bank(), synthetic_rir_bank(), synthetic_insert_bank()
    for b in (noise, rir, insert):
        b.audio = mark_device(b.audio)
    pipe = Pipeline([Reverb(rir), AddNoise(noise), InsertClip(insert)], sample_rate=SR)
    wave, lengths = _speech(B=4)
    out = pipe(mark_device(wave), lengths, seed=4)
    params = pipe.params_from_records(_roundtrip(out.record))
    with count_syncs() as c:
        again = pipe(mark_device(wave), lengths, params=params)
        again.record
    assert c.count <= 2, c.sites
    assert torch.equal(again.wave, out.wave)


def test_hash_and_fingerprint():
    x = torch.randn(100)
    h = content_hash(x)
    assert h == content_hash(x.clone()) and h != content_hash(x * 1.0001) and len(h) == 16
    assert hash_of_key(key_of_hash(h)) == h
    a = Bank([x, x * 2], ["a", "b"], SR, ["x", "y"])
    assert Bank([x * 2, x], ["b", "a"], SR, ["y", "x"]).fingerprint == a.fingerprint  # order-free
    assert Bank([x, x * 2], ["a", "b"], SR, ["x", "z"]).fingerprint != a.fingerprint
    assert a.select("a").hashes == [h]  # derived banks keep the identities


# ------------------------------------------------------------------ A3: silent items


def test_silent_bank_items_are_refused():
    with pytest.raises(ValueError, match=r"hush.*silent"):
        Bank([torch.ones(10), torch.zeros(100)], ["a", "a"], SR, ["loud", "hush"])
    with pytest.raises(ValueError, match="hush"):
        Bank([torch.ones(10), torch.full((100,), 1e-8)], ["a", "a"], SR, ["loud", "hush"])
    Bank([torch.full((100,), 1e-3)], ["a"], SR)  # quiet but not silent


def test_silent_file_is_refused_naming_it(tmp_path):
    _write(tmp_path / "natural_rain.wav")
    _write(tmp_path / "natural_quiet.wav", amplitude=0.0)
    with pytest.raises(ValueError, match="natural_quiet.wav"):
        Bank.from_folder(tmp_path, SR)
    with pytest.raises(ValueError, match="natural_quiet"):
        noise_bank_from_folder(tmp_path, SR)
    silent_rir = tmp_path / "rir"
    _write(silent_rir / "room_dead.wav", amplitude=0.0)
    with pytest.raises(ValueError, match="room_dead"):
        Bank.from_folder(silent_rir, SR)


# ------------------------------------------------------------------ D1: domestic / interior


def test_domestic_and_interior_name_each_other(tmp_path):
    root = _noise_folder(tmp_path)
    renamed = noise_bank_from_folder(root, SR)  # the layouts rename domestic -> interior
    assert "interior" in renamed.categories()
    assert renamed.exclude("domestic").categories() == ["human", "natural"]
    assert renamed.select("domestic").categories() == ["interior"]
    assert renamed.select(["domestic", "interior"]).categories() == ["interior"]
    kept = Bank.from_folder(root, SR)  # keeps the file prefix
    assert kept.exclude("interior").categories() == ["human", "natural"]
    u = torch.linspace(0, 0.999, 50, dtype=torch.float64)
    idx = renamed.pick(u, u.flip(0), categories="domestic")
    assert set(renamed.category_ids[idx].tolist()) == {renamed.category_names.index("interior")}
    assert AddNoise(renamed, categories=["domestic"]).categories == ["interior"]
    with pytest.raises(KeyError, match="available"):
        renamed.select("music")


# ------------------------------------------------------------------ D4: the source in describe()


def test_describe_names_the_source():
    noise, rir, insert = synthetic_noise_bank(), synthetic_rir_bank(), synthetic_insert_bank()
    assert "synthetic" in Reverb().describe()
    assert rir.fingerprint in Reverb(rir).describe() and "4 clips" in Reverb(rir).describe()
    assert "synthetic" not in Reverb(rir).describe()
    assert noise.fingerprint in AddNoise(noise).describe()
    assert insert.fingerprint in InsertClip(insert).describe()
    assert perception_retaining(noise).describe() != perception_retaining(noise, rir).describe()


def test_folder_bank_is_named_after_its_folder(tmp_path):
    bank = Bank.from_folder(_noise_folder(tmp_path), SR)
    assert "'noise'" in bank.describe() and "5 clips" in bank.describe()


# ------------------------------------------------------------------ D6: split


def _many():
    cats = ["a"] * 20 + ["b"] * 10 + ["c"] * 3 + ["d"] * 2 + ["e"]
    return Bank(_clips(len(cats), seed=1, length=50), cats, SR, [f"{c}{i}" for i, c in enumerate(cats)], name="n")


def test_split_is_stratified_disjoint_and_seeded():
    bank = _many()
    train, val, test = bank.split((0.8, 0.1, 0.1), seed=0)
    parts = [train, val, test]
    names = [set(p.names) for p in parts]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert set.union(*names) == set(bank.names)
    for cat in ("a", "b", "c"):  # enough files: represented in every part
        assert all(cat in p.categories() for p in parts)
    assert "d" in train.categories() and "d" in val.categories() and "e" in train.categories()
    assert sum(n.startswith("a") for n in train.names) == 16
    again = bank.split((0.8, 0.1, 0.1), seed=0)
    assert [p.names for p in again] == [p.names for p in parts]
    assert [p.names for p in bank.split(seed=1)] != [p.names for p in parts]
    assert train.name == "n/train" and test.describe().startswith("bank 'n/test'")
    # a category's split does not depend on the file order or on the other categories
    order = list(range(len(bank)))[::-1]
    flipped = Bank([bank.clip(i) for i in order],
                   [bank.category_names[int(bank.category_ids[i])] for i in order], SR, [bank.names[i] for i in order])
    assert [sorted(p.names) for p in flipped.split(seed=0)] == [sorted(p.names) for p in parts]


def test_split_refuses_bad_fractions_and_empty_parts():
    bank = _many()
    with pytest.raises(ValueError, match="fractions"):
        bank.split((0.5, 0.4))
    with pytest.raises(ValueError, match="fractions"):
        bank.split((1.0, 0.0))
    with pytest.raises(ValueError, match="empty"):
        Bank(_clips(2, seed=0), ["a", "a"], SR).split((0.5, 0.3, 0.2))
    a, b = Bank(_clips(2, seed=0), ["a", "a"], SR).split((0.5, 0.5))
    assert len(a) == len(b) == 1


# ------------------------------------------------------------------ real recordings


@pytest.mark.real_data
def test_real_noise_replay_after_adding_a_file(shared_data, tmp_path):
    files = sorted((shared_data / "noise").glob("*.wav"))
    root = tmp_path / "noise"
    root.mkdir()
    chosen = [f for f in files if f.stem.startswith(("natural_rain", "human_laugh", "domestic_door"))][:6]
    for f in chosen:
        shutil.copy(f, root / f.name)
    bank = noise_bank_from_folder(root, SR, max_seconds=2.0)
    pipe = Pipeline([AddNoise(bank, categories="interior")], sample_rate=SR)
    wave, lengths = _speech(B=6, T=8000)
    out = pipe(wave, lengths, seed=0)
    extra = next(f for f in files if f not in chosen and f.stem.startswith("domestic"))
    shutil.copy(extra, root / ("domestic_0_" + extra.name))
    grown = Pipeline([AddNoise(noise_bank_from_folder(root, SR, max_seconds=2.0))], sample_rate=SR)
    again = grown(wave, lengths, params=grown.params_from_records(_roundtrip(out.record)))
    assert torch.equal(again.wave, out.wave)
    train, val, test = grown.leaves[0].bank.split(seed=0)
    assert sum(map(len, (train, val, test))) == len(grown.leaves[0].bank)


# ------------------------------------------------------------------ D5: ragged storage


def _long_and_short():
    """One long item and three short ones (deterministic, no RNG)."""
    t = torch.arange(4000, dtype=torch.float32)
    clips = [torch.sin(t[:n] * (0.01 + 0.003 * i)) * (0.5 + 0.1 * i) for i, n in enumerate((4000, 120, 333, 7))]
    return clips, ["natural", "human", "natural", "interior"], ["long", "a", "b", "c"]


def _padded(clips):
    """The old ``(N, T_max)`` zero-padded layout of ``clips``."""
    out = torch.zeros(len(clips), max(c.numel() for c in clips))
    for i, c in enumerate(clips):
        out[i, : c.numel()] = c
    return out


def test_bank_holds_its_items_ragged():
    clips, cats, names = _long_and_short()
    bank = Bank(clips, cats, SR, names)
    lengths = [c.numel() for c in clips]
    assert bank.audio.shape == (sum(lengths),) and bank.audio.dtype == torch.float32
    assert bank.nbytes == sum(lengths) * 4 == 17840  # not N * T_max * 4 = 64000
    assert bank.nbytes < len(clips) * max(lengths) * 4
    assert bank.offsets.dtype == torch.int64 and bank.offsets.tolist() == [0, 4000, 4120, 4453]
    assert bank.lengths.tolist() == lengths and len(bank) == 4
    for i, c in enumerate(clips):
        assert torch.equal(bank.clip(i), c)
    assert torch.equal(bank.audio, torch.cat(clips))
    # the identities do not depend on the layout: the fingerprint of the padded-layout banks
    assert bank.fingerprint == "886d74c68038bb6c" and bank.hashes == [content_hash(c) for c in clips]
    assert bank.peak_index.tolist() == [int(c.abs().argmax()) for c in clips]


@pytest.mark.parametrize("index", [[0, 1, 2, 3], [3, 1, 1], [2], [1, 3], []])
def test_gather_matches_the_padded_layout(index):
    clips, cats, names = _long_and_short()
    bank = Bank(clips, cats, SR, names)
    index = torch.tensor(index, dtype=torch.int64)
    audio, lengths = bank.gather(index)
    width = max([clips[i].numel() for i in index.tolist()], default=0)
    ref = _padded(clips)[index, :width]
    assert audio.shape == (len(index), width) and audio.dtype == torch.float32
    assert torch.equal(audio.view(torch.int32), ref.view(torch.int32))  # padding is +0.0, bit for bit
    assert lengths.tolist() == [clips[i].numel() for i in index.tolist()]


def test_gather_on_the_device_costs_no_sync():
    clips, cats, names = _long_and_short()
    bank = Bank(clips, cats, SR, names)
    bank.audio = mark_device(bank.audio)
    index = torch.tensor([3, 0, 1])
    with count_syncs() as c:
        audio, lengths = bank.gather(index)
        from gpuaug._sync import host_of
        host = host_of(lengths)
    assert c.count == 0 and not c.mixed, (c.sites, c.mixed)
    assert isinstance(audio, torch.Tensor) and audio.device == bank.device and lengths.device == bank.device
    ref = _padded(clips)[index]
    assert torch.equal(audio.as_subclass(torch.Tensor), ref) and host.tolist() == [7, 4000, 120]


def test_derived_banks_keep_the_items():
    clips, cats, names = _long_and_short()
    bank = Bank(clips, cats, SR, names)
    sel = bank.select("natural")
    assert sel.names == ["long", "b"] and sel.nbytes == (4000 + 333) * 4
    assert torch.equal(sel.clip(1), clips[2]) and sel.offsets.tolist() == [0, 4000]
    rest = bank.exclude("natural")
    assert torch.equal(rest.audio, torch.cat([clips[1], clips[3]]))
    parts = bank.split((0.5, 0.5), seed=0)
    assert sorted(sum((p.names for p in parts), [])) == sorted(names)
    for p in parts:
        for i, n in enumerate(p.names):
            assert torch.equal(p.clip(i), clips[names.index(n)])
    key = bank.item_keys[2:3]
    assert bank.index_of(key).tolist() == [2] and sel.index_of(key).tolist() == [1]
    idx = bank.pick(torch.tensor([0.9, 0.1]), torch.tensor([0.99, 0.0]))
    assert idx.tolist() == [2, 1]


@pytest.mark.real_data
def test_real_noise_bank_holds_what_its_files_hold(shared_data):
    bank = noise_bank_from_folder(shared_data / "noise", SR)
    assert bank.nbytes == int(bank.lengths.sum()) * 4
    assert bank.nbytes * 3 < len(bank) * int(bank.lengths.max()) * 4  # one long file no longer pads the others


def test_gather_ragged_kernel_equals_the_torch_gather(monkeypatch):
    """The CPU row copy (op ragged_gather) and the torch index gather give the same rows."""
    g = torch.Generator().manual_seed(3)
    for dtype in (torch.float32, torch.float64):
        flat = torch.randn(1000, generator=g, dtype=dtype)
        starts, lengths = torch.tensor([0, 10, 990, 500, 999]), torch.tensor([10, 0, 10, 300, 1])
        got = gather_ragged(flat, starts, lengths, 320)
        monkeypatch.setenv("GPUAUG_BACKEND_RAGGED_GATHER", "torch")
        want = gather_ragged(flat, starts, lengths, 320)
        monkeypatch.delenv("GPUAUG_BACKEND_RAGGED_GATHER")
        assert got.dtype == dtype and got.shape == (5, 320) and torch.equal(got, want)
        assert torch.equal(flat, flat.clone()) and not got[1].any()


def test_pick_tables_are_kept_per_category_selection():
    """``pick`` builds its category tables once per selection (a name, names, or all) and
    returns the category-balanced choice the definition gives, selection by selection."""
    clips = [torch.full((50 + i,), 0.1 * (i + 1)) for i in range(7)]
    bank = Bank(clips, ["a", "b", "a", "c", "b", "a", "c"], 16000)
    g = torch.Generator().manual_seed(3)
    u_cat, u_item = torch.rand(64, generator=g, dtype=torch.float64), torch.rand(64, generator=g, dtype=torch.float64)

    def by_definition(cats):
        ids = [bank.category_names.index(c) for c in cats]
        chosen = [ids[min(int(u * len(ids)), len(ids) - 1)] for u in u_cat.tolist()]
        members = {c: [i for i, k in enumerate(bank.category_ids.tolist()) if k == c] for c in ids}
        return [members[c][min(int(u * len(members[c])), len(members[c]) - 1)] for c, u in zip(chosen, u_item.tolist())]

    for cats in (None, "b", ["c", "a"], ("c", "a"), ["a"]):
        want = by_definition(bank.categories() if cats is None else ([cats] if isinstance(cats, str) else list(cats)))
        for _ in range(2):  # built, then from the kept tables
            assert bank.pick(u_cat, u_item, cats).tolist() == want
    assert len(bank._pick_cache) == 4  # None, ("b",), ("c", "a"), ("a",)
