"""Checkpoints are tensors only (safetensors), verified, and refuse tampered or truncated files."""
import json

import pytest
import torch

pytest.importorskip("safetensors")

from gpuaug.train.checkpoint import CheckpointError, file_sha256, load_checkpoint, save_checkpoint  # noqa: E402


def _tensors():
    g = torch.Generator().manual_seed(0)
    return {"model.w": torch.randn(4, 3, generator=g), "norm.mode": torch.tensor([1]),
            "norm.names": torch.tensor([48, 51], dtype=torch.uint8)}


def test_round_trip_and_digest(tmp_path):
    path = tmp_path / "a" / "best.safetensors"
    digest = save_checkpoint(path, _tensors(), {"fold": "speaker03", "epoch": 4})
    assert digest == file_sha256(path)
    tensors, meta = load_checkpoint(path, digest)
    assert meta == {"fold": "speaker03", "epoch": 4}
    for k, v in _tensors().items():
        assert torch.equal(tensors[k], v) and tensors[k].dtype == v.dtype
    assert not (tmp_path / "a" / "best.safetensors.tmp").exists()


def test_changed_file_is_refused_by_its_digest(tmp_path):
    path = tmp_path / "best.safetensors"
    digest = save_checkpoint(path, _tensors(), {"fold": 0})
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01  # one flipped bit in the last tensor's data: still parses
    path.write_bytes(bytes(raw))
    load_checkpoint(path)  # without a digest it loads (the format cannot tell) ...
    with pytest.raises(CheckpointError, match="SHA-256.*differs"):
        load_checkpoint(path, digest)  # ... with the recorded digest it is refused


@pytest.mark.parametrize("damage", ["truncate", "header", "pickle"])
def test_unreadable_files_raise_naming_the_file(tmp_path, damage):
    path = tmp_path / "best.safetensors"
    save_checkpoint(path, _tensors(), {"fold": 0})
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "header":
        n = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + n])
        header["model.w"]["shape"] = [400, 300]  # offsets no longer match the shape
        body = json.dumps(header).encode().ljust(n)
        path.write_bytes(raw[:8] + body[:n] + raw[8 + n:])
    else:  # a pickle (torch.save) where a checkpoint is expected: never unpickled
        torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match=str(path.name)):
        load_checkpoint(path)


def test_missing_file_and_foreign_safetensors(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "nope.safetensors")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="no gpuaug metadata"):
        load_checkpoint(tmp_path / "other.safetensors")
