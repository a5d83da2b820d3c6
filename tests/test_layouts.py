"""Noise / RIR / insert banks from folders in known layouts (ESC-50, MUSAN, prefix, subfolder)."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf
import torch

from gpuaug.audio_io import load_resampled, read_audio
from gpuaug.data.layouts import (detect_noise_layout, insert_bank_from_folder, noise_bank_from_folder,
                                 rir_bank_from_folder)

SR = 16000


def _write(path, sr=SR, seconds=0.2, channels=1, freq=440.0, subtype=None):
    """A tone file; returns the written (T, C) array."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(seconds * sr))) / sr
    data = 0.3 * np.sin(2 * np.pi * freq * t)[:, None] * np.linspace(1.0, 0.5, channels)[None]
    sf.write(path, data if channels > 1 else data[:, 0], sr, subtype=subtype)
    return data


ESC = [("1-100032-A-0.wav", 0, "dog", 44100, 2), ("1-115545-A-19.wav", 19, "thunderstorm", 22050, 1),
       ("2-109505-A-21.wav", 21, "sneezing", 8000, 1), ("3-141240-B-33.wav", 33, "door_wood_creaks", 44100, 1),
       ("4-161579-A-44.wav", 44, "engine", 22050, 2)]


@pytest.fixture
def esc50_tree(tmp_path):
    root = tmp_path / "ESC-50-master"
    for name, *_, sr, ch in ESC:
        _write(root / "audio" / name, sr=sr, channels=ch)
    (root / "meta").mkdir()
    with open(root / "meta" / "esc50.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        for name, target, cat, *_ in ESC:
            fold, src, take, _ = name[:-4].split("-")
            w.writerow([name, fold, target, cat, "False", src, take])
    return root


def test_esc50_layout_maps_target_groups(esc50_tree):
    assert detect_noise_layout(esc50_tree) == "esc50"
    bank = noise_bank_from_folder(esc50_tree, SR)
    assert bank.categories() == ["animal", "human", "interior", "natural", "transport"]
    by_name = dict(zip(bank.names, [bank.category_names[i] for i in bank.category_ids.tolist()]))
    assert by_name == {"dog-1-100032-A-0": "animal", "thunderstorm-1-115545-A-19": "natural",
                       "sneezing-2-109505-A-21": "human", "door_wood_creaks-3-141240-B-33": "interior",
                       "engine-4-161579-A-44": "transport"}
    # every file resampled to 16 kHz whatever its rate / channel count: 0.2 s -> 3200 samples
    assert bank.lengths.tolist() == [3200] * 5 and bank.sample_rate == SR
    # without meta, from the audio folder itself: the target comes from the file name
    (esc50_tree / "meta" / "esc50.csv").unlink()
    bank2 = noise_bank_from_folder(esc50_tree / "audio", SR, layout="esc50")
    assert bank2.categories() == bank.categories() and bank2.names[0] == "1-100032-A-0"


def test_esc50_category_selection_and_holdout(esc50_tree):
    held = noise_bank_from_folder(esc50_tree, SR, exclude="natural")
    assert held.categories() == ["animal", "human", "interior", "transport"]
    study = noise_bank_from_folder(esc50_tree, SR, categories=["natural", "human", "domestic"])
    assert study.categories() == ["human", "interior", "natural"]  # "domestic" is the alias of interior
    with pytest.raises(ValueError, match=r"unknown category \['babble'\].*available: \['animal', 'human'"):
        noise_bank_from_folder(esc50_tree, SR, exclude=["babble"])
    with pytest.raises(ValueError, match="leaves no noise"):
        noise_bank_from_folder(esc50_tree, SR, categories="human", exclude="human")


def test_musan_layout(tmp_path):
    base = tmp_path / "corpora"
    _write(base / "musan" / "music" / "fma" / "music-fma-0000.wav", sr=22050, channels=2)
    _write(base / "musan" / "speech" / "librivox" / "speech-librivox-0000.wav", sr=SR)
    _write(base / "musan" / "noise" / "free-sound" / "noise-free-sound-0000.wav", sr=8000)
    (base / "musan" / "README").write_text("MUSAN")
    for root in (base, base / "musan"):
        assert detect_noise_layout(root) == "musan"
        bank = noise_bank_from_folder(root, SR)
        assert bank.categories() == ["babble", "music", "noise"]
        assert dict(zip(bank.names, bank.category_ids.tolist()))["speech-librivox-0000"] == 0
    assert noise_bank_from_folder(base, SR, exclude="music").categories() == ["babble", "noise"]


def test_prefix_and_subfolder_layouts(tmp_path):
    flat = tmp_path / "flat"
    _write(flat / "natural_rain.wav", sr=22050, channels=2)
    _write(flat / "human_cough.flac", sr=8000)
    _write(flat / "domestic_door.wav", sr=44100)
    assert detect_noise_layout(flat) == "prefix"
    assert noise_bank_from_folder(flat, SR).categories() == ["human", "interior", "natural"]

    nested = tmp_path / "nested"
    _write(nested / "natural" / "rain.wav", sr=44100, channels=2)
    _write(nested / "domestic" / "door.flac", sr=22050)
    _write(nested / "babble" / "crowd" / "cafe.wav", sr=8000)
    assert detect_noise_layout(nested) == "subfolder"
    bank = noise_bank_from_folder(nested, SR)
    assert bank.categories() == ["babble", "interior", "natural"] and sorted(bank.names) == ["cafe", "door", "rain"]
    assert noise_bank_from_folder(nested, SR, exclude=["natural", "babble"]).names == ["door"]
    # the same files read as prefix layout fail clearly (no '_' in the stems)
    with pytest.raises(ValueError, match="prefix layout"):
        noise_bank_from_folder(nested, SR, layout="prefix")


def test_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        noise_bank_from_folder(tmp_path / "missing", SR)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no audio here")
    with pytest.raises(FileNotFoundError, match="no audio files"):
        noise_bank_from_folder(tmp_path / "empty", SR)
    odd = tmp_path / "odd"
    _write(odd / "rain.wav")
    with pytest.raises(ValueError, match="cannot detect the layout"):
        detect_noise_layout(odd)
    with pytest.raises(ValueError, match="layout must be one of"):
        noise_bank_from_folder(odd, SR, layout="urbansound")
    with pytest.raises(ValueError, match="not named like an ESC-50"):
        noise_bank_from_folder(odd, SR, layout="esc50")
    with pytest.raises(ValueError, match="not a MUSAN tree"):
        noise_bank_from_folder(odd, SR, layout="musan")


def test_resampling_keeps_pitch_and_duration(tmp_path):
    _write(tmp_path / "natural_tone.wav", sr=44100, seconds=0.5, channels=2, freq=1000.0)
    bank = noise_bank_from_folder(tmp_path, SR)
    x = bank.clip(0).double()
    assert x.numel() == 8000
    spec = torch.fft.rfft(x * torch.hann_window(x.numel(), dtype=torch.float64)).abs()
    assert abs(float(spec.argmax()) * SR / x.numel() - 1000.0) <= 2.0
    # stereo down-mix: channels 1.0 and 0.5 of the same tone -> amplitude 0.75 * 0.3
    assert abs(float(x[2000:6000].abs().max()) - 0.225) < 0.01
    cut = noise_bank_from_folder(tmp_path, SR, max_seconds=0.25)
    assert cut.lengths.tolist() == [4000]
    assert torch.allclose(cut.clip(0)[500:3500], bank.clip(0)[500:3500], atol=1e-4)


def test_rir_bank_first_channel(tmp_path):
    rir = np.zeros((800, 2))
    rir[10, 0], rir[40, 1] = 1.0, 0.8
    rir[10:, 0] += 0.05 * np.exp(-np.arange(790) / 100)
    sf.write(tmp_path / "room_a.wav", rir, SR, subtype="FLOAT")
    _write(tmp_path / "sub" / "room_b.flac", sr=44100, seconds=0.3)
    bank = rir_bank_from_folder(tmp_path, SR, trim_db=None)  # the files as they are
    assert bank.categories() == ["room"] and bank.names == ["room_a", "room_b"]
    assert torch.equal(bank.clip(0), torch.from_numpy(rir[:, 0]).float())
    assert bank.lengths.tolist() == [800, 4800]
    assert rir_bank_from_folder(tmp_path, SR, category="hall").categories() == ["hall"]


def test_insert_bank_categories_and_speakers(tmp_path):
    _write(tmp_path / "filler" / "spk01" / "uhm.wav", sr=22050)
    _write(tmp_path / "filler" / "spk02" / "ehm.wav", sr=SR, channels=2)
    _write(tmp_path / "laughter" / "haha.wav", sr=44100)
    _write(tmp_path / "cry_sob.wav", sr=8000)
    bank = insert_bank_from_folder(tmp_path, SR)
    assert bank.categories() == ["cry", "filler", "laugh"]
    cats = {n: bank.category_names[c] for n, c in zip(bank.names, bank.category_ids.tolist())}
    assert cats == {"cry_sob": "cry", "spk01/uhm": "filler", "spk02/ehm": "filler", "haha": "laugh"}
    _write(tmp_path / "music" / "song.wav")
    with pytest.raises(ValueError, match=r"insert category 'music' is not one of \('filler', 'laugh', 'cry'\)"):
        insert_bank_from_folder(tmp_path, SR)


def test_audio_io_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        read_audio(tmp_path / "nope.wav")
    (tmp_path / "junk.wav").write_bytes(b"not a wav file at all")
    with pytest.raises(ValueError, match="cannot read audio file .*junk.wav"):
        read_audio(tmp_path / "junk.wav")
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1)), SR)
    with pytest.raises(ValueError, match="empty.wav is empty"):
        read_audio(tmp_path / "empty.wav")
    sf.write(tmp_path / "nan.wav", np.array([0.0, np.nan, 0.1]), SR, subtype="FLOAT")
    with pytest.raises(ValueError, match="nan.wav contains NaN/Inf"):
        read_audio(tmp_path / "nan.wav")
    data = _write(tmp_path / "st.wav", channels=2, subtype="FLOAT")
    wave, sr = read_audio(tmp_path / "st.wav")
    assert sr == SR and wave.shape == (2, data.shape[0]) and wave.dtype == torch.float32
    with pytest.raises(ValueError, match="channel 2 does not exist"):
        load_resampled(tmp_path / "st.wav", SR, channel=2)


@pytest.mark.real_data
def test_real_noise_and_rir_folders(shared_data):
    assert detect_noise_layout(shared_data / "noise") == "prefix"
    bank = noise_bank_from_folder(shared_data / "noise", SR, max_seconds=3.0)
    assert bank.categories() == ["human", "interior", "natural"]
    counts = torch.bincount(bank.category_ids).tolist()
    assert counts == [5, 8, 11] and len(bank) == 24
    assert int(bank.lengths.max()) == 3 * SR and bool(torch.isfinite(bank.audio).all())
    assert min(float(bank.clip(i).abs().max()) for i in range(len(bank))) > 1e-3  # no silent clip
    assert noise_bank_from_folder(shared_data / "noise", SR, exclude="natural", max_seconds=0.5).categories() \
        == ["human", "interior"]
    rirs = rir_bank_from_folder(shared_data / "rir", SR)
    assert len(rirs) == 7 and rirs.categories() == ["room"]
    # the shortest file is the 1.0 s mono seminar-room RIR at 44.1 kHz
    assert int(rirs.untrimmed_lengths.min()) == SR
    assert int(rirs.lengths.min()) == 15881 and int(rirs.lengths.max()) == 52452  # trimmed at -60 dB
    peaks = torch.stack([rirs.clip(i).abs().argmax() for i in range(len(rirs))])
    assert bool((peaks < rirs.lengths).all()) and bool(torch.isfinite(rirs.audio).all())
