"""Checkpoints that are safe to load: tensors only (safetensors), verified by SHA-256.

A checkpoint is one ``.safetensors`` file: named tensors (model weights, normaliser
statistics) plus string metadata (JSON: the model configuration, fold, epoch). Loading never
unpickles anything. :func:`save_checkpoint` returns the file's SHA-256, which the run stores
in the fold's result; :func:`load_checkpoint` given that digest refuses a file that changed.
A truncated, tampered or non-safetensors file raises :class:`CheckpointError` naming the file.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "file_sha256"]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be trusted or read (the message names the file)."""


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(path: str | Path, tensors: dict[str, Tensor], meta: dict) -> str:
    """Write ``tensors`` (detached, contiguous, on the CPU) and ``meta`` (JSON-able) to
    ``path`` atomically (a temporary file renamed into place); returns its SHA-256."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    save_file(flat, str(tmp), metadata={"gpuaug": json.dumps(meta, sort_keys=True)})
    os.replace(tmp, path)
    return file_sha256(path)


def load_checkpoint(path: str | Path, sha256: str | None = None) -> tuple[dict[str, Tensor], dict]:
    """``(tensors, meta)`` of a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: missing file, digest different from ``sha256`` (the file changed
            since it was written), a file safetensors cannot parse (truncated, tampered
            header, not a checkpoint), or no gpuaug metadata.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    if sha256 is not None:
        actual = file_sha256(path)
        if actual != sha256:
            raise CheckpointError(f"checkpoint {path}: SHA-256 {actual[:16]}... differs from the recorded "
                                  f"{sha256[:16]}...: the file changed after it was written (tampered or truncated)")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("gpuaug")
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"checkpoint {path}: not a readable safetensors file ({type(e).__name__}: {e})") from None
    if raw is None:
        raise CheckpointError(f"checkpoint {path}: no gpuaug metadata (not written by gpuaug.train)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint {path}: its metadata is not JSON ({e})") from None
    return tensors, meta
