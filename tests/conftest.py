"""Shared fixtures: the real recordings in ../shared/data (optional) and small helpers."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

if not torch.cuda.is_available():
    # Numba CUDA kernels run on the CPU simulator (must be set before numba.cuda is imported).
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

SHARED_DATA = Path(os.environ.get("GPUAUG_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def load_real(rel: str, sample_rate: int = 16000) -> torch.Tensor:
    """Load ``SHARED_DATA/rel`` as a mono float32 tensor at ``sample_rate`` (julius resampling)."""
    import julius
    import soundfile as sf

    data, sr = sf.read(str(SHARED_DATA / rel), dtype="float64", always_2d=True)
    x = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
    if sr != sample_rate:
        x = julius.resample_frac(x, sr, sample_rate)
    return x.float()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; skips the test when the real recordings are absent."""
    if not (SHARED_DATA / "MANIFEST.tsv").exists():
        pytest.skip("real recordings (../shared/data) not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def emodb_speech(shared_data):
    """Four real EmoDB clips (mono, 16 kHz, float32) of different emotions."""
    names = sorted((shared_data / "emotion").glob("emodb_*.wav"))[:4]
    return [load_real(f"emotion/{p.name}") for p in names]


try:  # deterministic hypothesis examples in CI (a red CI must not be a coin toss)
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    _hyp_settings.register_profile("dev", deadline=None, print_blob=True)
    _hyp_settings.load_profile("ci" if os.environ.get("CI") else "dev")
except ImportError:  # pragma: no cover - hypothesis is a test extra
    pass


@pytest.fixture(scope="session")
def emodb_batch(emodb_speech):
    """The :func:`emodb_speech` clips as a zero-padded ``(B, T)`` batch and ``(B,)`` lengths."""
    from gpuaug.data import pad_batch

    return pad_batch(emodb_speech)
