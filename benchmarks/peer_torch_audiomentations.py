"""torch-audiomentations on whole batches, run in its own environment (it needs torchaudio).

bench.py runs this script with the peers' interpreter (``.venv-peers``, see
``setup_peers.sh``) as::

    .venv-peers/bin/python benchmarks/peer_torch_audiomentations.py SPEC.json OUT.json

SPEC holds: ``steps``, ``seconds``, ``batch_npy`` (the clean ``(B, T)`` float32 batch),
``noise_files``, ``rir_files``, ``devices``, ``repeats``, ``warmup``, ``batches_per_repeat``.
OUT gets one measurement per device plus the versions of torch / torchaudio /
torch-audiomentations. Only this file imports torch_audiomentations.
"""
from __future__ import annotations

import json
import sys

import numpy as np
import torch

from common import SR, STEP_PARAMS, summarize, time_repeats

STEP_MAP = {
    "noise": "AddBackgroundNoise(same 16 kHz files, SNR U[0, 20] dB; reads the files from disk every call)",
    "reverb": "ApplyImpulseResponse(same 16 kHz RIR files, compensate_for_propagation_delay; reads files every call)",
    "fade": "n/a",
    "speed_segment": "n/a",
    "pitch": "approx: PitchShift(+0.41 semitone: its only 'fast' ratio near +1 st at 16 kHz; per-clip loop inside)",
    "speed": "n/a",
    "gain": "Gain(-6..6 dB)",
    "drop": "approx: SpliceOut(3 intervals <= 60 ms cut, zero-padded at the end)",
    "mcadams": "n/a",
}


def patch_torchaudio_io() -> str | None:
    """Give torchaudio back the file I/O that torch-audiomentations 0.12 calls.

    torchaudio 2.9+ removed ``torchaudio.info`` and routes ``torchaudio.load`` through
    torchcodec (not installed). Both are supplied here with their old semantics via
    soundfile (what torchaudio's soundfile backend did), so the peer still reads its noise
    and RIR files from disk on every call, as it does for its users.
    """
    import types

    import soundfile as sf
    import torchaudio

    if hasattr(torchaudio, "info"):
        return None

    def info(path):
        i = sf.info(str(path))
        return types.SimpleNamespace(sample_rate=i.samplerate, num_frames=i.frames, num_channels=i.channels)

    def load(path, frame_offset=0, num_frames=-1, **_):
        data, sr = sf.read(str(path), start=frame_offset, frames=num_frames, dtype="float32", always_2d=True)
        return torch.from_numpy(data.T.copy()), sr

    torchaudio.info, torchaudio.load = info, load
    return "torchaudio.info/load supplied via soundfile (torchaudio >= 2.9 dropped them)"


def build(steps, noise_files, rir_files):
    import torch_audiomentations as T

    P = STEP_PARAMS
    snr = P["noise"]["snr_db_choices"]
    make = {
        "noise": lambda: T.AddBackgroundNoise(noise_files, min_snr_in_db=min(snr), max_snr_in_db=max(snr), p=1.0,
                                              sample_rate=SR, output_type="dict"),
        "reverb": lambda: T.ApplyImpulseResponse(rir_files, p=1.0, sample_rate=SR,
                                                 compensate_for_propagation_delay=True, output_type="dict"),
        "pitch": lambda: T.PitchShift(min_transpose_semitones=0.3, max_transpose_semitones=P["pitch"]["semitones"],
                                      p=1.0, sample_rate=SR, output_type="dict"),
        "gain": lambda: T.Gain(min_gain_in_db=P["gain"]["min_gain_db"], max_gain_in_db=P["gain"]["max_gain_db"],
                               p=1.0, output_type="dict"),
        "drop": lambda: T.SpliceOut(num_time_intervals=P["drop"]["max_segments"], max_width=int(P["drop"]["max_ms"]),
                                    p=1.0, sample_rate=SR, output_type="dict"),
    }
    todo = [make[s]() for s in steps if s in make]
    return (T.Compose(todo, output_type="dict") if todo else None), {s: STEP_MAP[s] for s in steps}


def main(spec_path: str, out_path: str) -> None:
    import torch_audiomentations
    import torchaudio

    io_note = patch_torchaudio_io()
    spec = json.loads(open(spec_path).read())
    clips = torch.from_numpy(np.load(spec["batch_npy"]))[:, None, :]  # (B, 1, T)
    B, T = clips.shape[0], clips.shape[-1]
    n = spec["batches_per_repeat"]
    compose, ops = build(spec["steps"], spec["noise_files"], spec["rir_files"])
    result = {"versions": {"torch": torch.__version__, "torchaudio": torchaudio.__version__,
                           "torch_audiomentations": torch_audiomentations.__version__, "numpy": np.__version__},
              "torch_threads": torch.get_num_threads(), "io_patch": io_note, "ops": ops, "measurements": []}
    for dev_name in spec["devices"]:
        device = torch.device(dev_name)
        if compose is None:
            result["measurements"].append({"device": dev_name, "status": "n/a", "reason": "no step of this pipeline"})
            continue
        if device.type == "cuda" and not torch.cuda.is_available():
            result["measurements"].append({"device": dev_name, "status": "unavailable", "reason": "no CUDA"})
            continue
        x = clips.to(device)
        aug = compose.to(device) if hasattr(compose, "to") else compose

        def run(_i):
            for _ in range(n):
                aug(x, sample_rate=SR).samples

        with torch.no_grad():
            times = time_repeats(run, repeats=spec["repeats"], warmup=spec["warmup"], device=device)
        m = summarize(times, B * n, B * n * T / SR)
        m.update(device=dev_name, status="ok")
        result["measurements"].append(m)
    with open(out_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
