"""Reading errors are loud and name the file (issue 10, A6 and A11): truncated WAVs, bad
sample rates, manifest encodings."""
import struct

import numpy as np
import pytest
import soundfile as sf
import torch

from gpuaug.audio_io import load_resampled, read_audio, resample
from gpuaug.banks import Bank
from gpuaug.data.datasets import ManifestDataset, read_alignment
from gpuaug.data.layouts import noise_bank_from_folder


def _wav(path, n=44100, sr=44100, channels=1):
    x = (0.1 * np.random.default_rng(0).standard_normal((n, channels))).astype("float32")
    sf.write(str(path), x, sr, subtype="PCM_16")
    return path


def _truncate(path, keep_bytes):
    data = path.read_bytes()
    path.write_bytes(data[:keep_bytes])
    return path


# ---- A6: truncated WAV -------------------------------------------------------------------

def test_truncated_wav_raises_naming_the_file(tmp_path):
    f = _truncate(_wav(tmp_path / "cut.wav"), 44 + 1000)  # 500 of 44,100 samples left
    assert sf.info(str(f)).frames == 500  # what libsndfile alone would silently load
    with pytest.raises(ValueError, match=r"cut\.wav is truncated.*88200 bytes.*only 1000"):
        read_audio(f)
    with pytest.raises(ValueError, match="cut.wav is truncated"):
        load_resampled(f, 16000)


def test_intact_wavs_still_read(tmp_path):
    f = _wav(tmp_path / "ok.wav", n=1001, sr=16000, channels=2)
    wave, sr = read_audio(f)
    ref, _ = sf.read(str(f), dtype="float32", always_2d=True)
    assert sr == 16000 and wave.shape == (2, 1001) and torch.equal(wave, torch.from_numpy(ref.T.copy()))
    # an odd-sized chunk before `data` (word-aligned with a pad byte) does not confuse the parser
    raw = f.read_bytes()
    assert raw[36:40] == b"data"
    odd = b"LIST" + struct.pack("<I", 5) + b"INFOx" + b"\0"
    body = raw[12:36] + odd + raw[36:]
    g = tmp_path / "odd_chunk.wav"
    g.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)
    assert torch.equal(read_audio(g)[0], wave)


def test_streaming_header_without_size_is_not_called_truncated(tmp_path):
    f = _wav(tmp_path / "stream.wav", n=800, sr=16000)
    raw = bytearray(f.read_bytes())
    raw[40:44] = struct.pack("<I", 0xFFFFFFFF)  # data size unknown (never finalised)
    f.write_bytes(bytes(raw))
    try:
        sf.info(str(f))
    except Exception:  # pragma: no cover - libsndfile refuses it: nothing to check
        pytest.skip("libsndfile does not read unsized data chunks")
    wave, _ = read_audio(f)
    assert wave.shape[-1] == 800


def test_truncated_wav_raises_in_datasets_and_banks(tmp_path):
    (tmp_path / "noise").mkdir()
    _wav(tmp_path / "noise" / "natural_rain.wav", n=16000, sr=16000)
    _truncate(_wav(tmp_path / "noise" / "human_cut.wav", n=16000, sr=16000), 44 + 200)
    with pytest.raises(ValueError, match="human_cut.wav is truncated"):
        Bank.from_folder(tmp_path / "noise", 16000)
    with pytest.raises(ValueError, match="human_cut.wav is truncated"):
        noise_bank_from_folder(tmp_path / "noise", 16000)
    (tmp_path / "m.csv").write_text("path,label\nnoise/natural_rain.wav,a\nnoise/human_cut.wav,b\n")
    ds = ManifestDataset(tmp_path / "m.csv")
    assert ds[0]["wave"].shape == (16000,)
    with pytest.raises(ValueError, match="human_cut.wav is truncated"):
        ds[1]


def test_truncated_real_recording(shared_data, tmp_path):
    src = sorted((shared_data / "emotion").glob("emodb_*.wav"))[0]
    whole, _ = read_audio(src)
    f = tmp_path / src.name
    f.write_bytes(src.read_bytes()[: src.stat().st_size // 3])
    with pytest.raises(ValueError, match=f"{src.stem}.wav is truncated"):
        read_audio(f)
    assert whole.shape[-1] > 0


# ---- A11: sample rates ---------------------------------------------------------------------

@pytest.mark.parametrize("bad", [0, -16000, 16000.5, "16000", True])
def test_bad_target_sample_rate_is_named(tmp_path, bad):
    f = _wav(tmp_path / "x.wav", n=4410)
    with pytest.raises(ValueError, match="sample_rate must be a positive integer"):
        load_resampled(f, bad)
    with pytest.raises(ValueError, match="sample_rate must be a positive integer"):
        Bank.from_folder(tmp_path, bad)
    with pytest.raises(ValueError, match="new_sr must be a positive integer"):
        resample(torch.zeros(100), 16000, bad)
    with pytest.raises(ValueError, match="old_sr must be a positive integer"):
        resample(torch.zeros(100), bad, 16000)


def test_integer_valued_float_rate_is_accepted(tmp_path):
    f = _wav(tmp_path / "x.wav", n=4410, sr=44100)
    assert load_resampled(f, 16000.0).shape == load_resampled(f, 16000).shape == (1600,)


# ---- A11: manifest encodings ------------------------------------------------------------------

def test_latin1_manifest_names_the_file(tmp_path):
    _wav(tmp_path / "a.wav", n=100, sr=16000)
    m = tmp_path / "latin.csv"
    m.write_bytes("path,label,speaker\na.wav,happy,Jos\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError) as e:
        ManifestDataset(m)
    assert not isinstance(e.value, UnicodeDecodeError)
    msg = str(e.value)
    assert str(m) in msg and "not valid UTF-8" in msg and "0xe9" in msg and "line 2" in msg
    j = tmp_path / "latin.jsonl"
    j.write_bytes('{"path": "a.wav", "text": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(ValueError, match="latin.jsonl is not valid UTF-8"):
        ManifestDataset(j)
    a = tmp_path / "words.tsv"
    a.write_bytes("0.0\t0.5\tcaf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="words.tsv is not valid UTF-8"):
        read_alignment(a)


@pytest.mark.parametrize("suffix,sep", [(".csv", ","), (".tsv", "\t")])
def test_excel_bom_manifest_is_accepted(tmp_path, suffix, sep):
    _wav(tmp_path / "a.wav", n=100, sr=16000)
    m = tmp_path / f"excel{suffix}"
    m.write_bytes(f"label{sep}path\r\nhappy{sep}a.wav\r\n".encode("utf-8-sig"))
    ds = ManifestDataset(m)
    assert len(ds) == 1 and ds[0]["label_name"] == "happy" and ds[0]["wave"].shape == (100,)
    m.write_bytes(f"path{sep}speaker\r\na.wav{sep}Jos\u00e9\r\n".encode("utf-8-sig"))
    assert ManifestDataset(m)[0]["speaker"] == "Jos\u00e9"


def test_bom_jsonl_is_accepted(tmp_path):
    _wav(tmp_path / "a.wav", n=100, sr=16000)
    m = tmp_path / "m.jsonl"
    m.write_bytes('{"path": "a.wav", "label": "sad"}\n'.encode("utf-8-sig"))
    assert ManifestDataset(m)[0]["label_name"] == "sad"
