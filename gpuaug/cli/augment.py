"""``gpuaug augment``: apply a pipeline to audio files (or the built-in corpus) for listening.

Writes ``NNNN_<name>_clean.wav`` and ``NNNN_<name>_aug.wav`` per clip and ``params.json``
with every clip's perception tag, label action and full augmentation record, and the list
of exactly the files written (``files``).

The wavs are 32-bit float (``subtype="FLOAT"``), not clipped or quantised: the ``_aug``
file holds exactly the samples training gets from the same pipeline, seed and epoch,
including the pipeline's output-level step (``--output-level``, default ``peak_limit``:
a clip above full scale is scaled down to peak at 1.0, the gain is in its record). With
``--output-level keep`` a file may hold samples beyond +-1.0, as training would see them
(a float WAV stores them; a player may clip them on playback).

Safety: every argument is checked before any work; the output is built in a temporary
sibling folder of ``--out`` (same filesystem) and renamed into place only once complete,
so a failed or interrupted run leaves nothing behind. A non-empty ``--out`` is refused
unless ``--overwrite`` is given, and even then only a folder holding a previous run's
output (its ``params.json`` and wavs) is replaced, after the new one is complete.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from ..banks import AUDIO_SUFFIXES
from .banks import add_bank_arguments, check_bank_arguments, load_banks
from .errors import CommandError, UsageError
from .progress import progress

#: What the CLI writes: float32 WAV, the samples as they are (no clipping, no dither).
WAV_SUBTYPE = "FLOAT"


def write_float_wav(path: Path, audio, sample_rate: int) -> None:
    """Write ``audio`` ((T,) or (C, T)) as a 32-bit float WAV, samples unchanged."""
    import soundfile as sf

    x = audio.detach().cpu().float()
    x = x[None] if x.dim() == 1 else x
    sf.write(str(path), x.numpy().T, int(sample_rate), subtype=WAV_SUBTYPE, format="WAV")

#: Names ``gpuaug augment`` writes (a folder holding only these may be replaced by --overwrite).
_OUTPUT_NAME = re.compile(r"^\d{4,}_.*_(clean|aug)\.wav$")
_STAGING = (".gpuaug-tmp-", ".gpuaug-old-")


def add_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="*", help="audio files or folders (default: the built-in corpus)")
    parser.add_argument("--out", required=True, help="output folder (must be new or empty, see --overwrite)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the output of a previous run in --out (only once the new one is complete)")
    parser.add_argument("--preset", default="retaining", help="preset name, or seed000:<condition>")
    parser.add_argument("--clips", type=int, default=8, help="built-in corpus size when no inputs are given")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epoch", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--on-altering", default="mask", choices=("drop", "mask", "relabel"))
    parser.add_argument("--output-level", default="peak_limit", choices=("peak_limit", "keep", "normalize"),
                        help="the pipeline's output-level policy (see gpuaug.transforms.Pipeline); the wavs "
                             "are float32, written as training sees them, never clipped")
    add_bank_arguments(parser)


def _check_arguments(args) -> None:
    from ..presets import PRESET_NAMES

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.sample_rate < 1:
        raise UsageError(f"--sample-rate must be a positive number of Hz, got {args.sample_rate}")
    if not args.inputs and args.clips < 1:
        raise UsageError(f"--clips must be >= 1, got {args.clips}")
    if args.preset not in PRESET_NAMES and not (args.preset.startswith("seed000:") and len(args.preset) > 8):
        raise UsageError(f"unknown --preset {args.preset!r}; available: {', '.join(PRESET_NAMES)} "
                         f"or seed000:<condition>")
    problem = check_bank_arguments(args)
    if problem:
        raise UsageError(problem)


def _previous_output_problem(out: Path) -> str | None:
    """Why ``out`` is not (only) a previous ``gpuaug augment`` output, or ``None`` when it is."""
    try:
        meta = json.loads((out / "params.json").read_text(encoding="utf-8"))
        listed = set(meta.get("files", []))
        listed |= {e[k] for e in meta["clips"] for k in ("file", "clean") if k in e}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "it has no params.json of a gpuaug augment run"
    foreign = sorted(p.name for p in out.iterdir() if p.name != "params.json" and not (
        p.is_file() and not p.is_symlink() and (p.name in listed or _OUTPUT_NAME.match(p.name))))
    if foreign:
        return f"it holds files gpuaug augment did not write: {foreign[:3]}{' ...' if len(foreign) > 3 else ''}"
    return None


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() or out.is_symlink():
        if not out.is_dir() or out.is_symlink():
            raise UsageError(f"--out {out} exists and is not a folder")
        if any(out.iterdir()):
            if not overwrite:
                raise UsageError(f"--out {out} is not empty; give --overwrite to replace a previous run's output, "
                                 f"or choose a new folder")
            problem = _previous_output_problem(out)
            if problem:
                raise UsageError(f"--out {out} is not replaced even with --overwrite: {problem}")


def _input_files(args, out: Path) -> list[Path]:
    out_resolved = out.resolve()
    files: list[Path] = []
    for name in args.inputs:
        p = Path(name)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES and f.is_file()
                           and out_resolved not in f.resolve().parents  # never re-read our own output
                           and not any(tag in part for part in f.parts for tag in _STAGING))
            if not found:
                raise UsageError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {p}")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise UsageError(f"no such file or folder: {p}")
    return files


def _items(args, files: list[Path]) -> list[tuple[str, dict]]:
    if not args.inputs:
        from ..data.datasets import SyntheticSERDataset

        ds = SyntheticSERDataset(args.clips, sample_rate=args.sample_rate, seed=args.seed)
        return [(f"synthetic{i}_{ds[i].get('label_name', '')}", ds[i]) for i in range(len(ds))]
    from ..audio_io import read_audio

    out = []
    for i, f in enumerate(files):
        wave, sr = read_audio(f)
        out.append((f.stem, {"wave": wave, "sample_rate": sr, "index": i}))
    return out


def _make_staging(out: Path) -> tuple[Path, list[Path]]:
    """Create ``out``'s missing parents and a temporary sibling folder; ``(staging, created parents)``."""
    created: list[Path] = []
    parent = out.absolute().parent
    missing = []
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    try:
        for d in reversed(missing):
            d.mkdir()
            created.append(d)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name or 'out'}{_STAGING[0]}", dir=out.absolute().parent))
    except OSError as e:
        _remove_created(created)
        raise UsageError(f"cannot create the output folder {out}: {e.strerror or e}") from None
    return staging, created


def _remove_created(created: list[Path]) -> None:
    for d in reversed(created):
        try:
            d.rmdir()  # only if still empty
        except OSError:
            break


def _commit(staging: Path, out: Path, overwrite: bool) -> None:
    """Move the complete ``staging`` folder to ``out`` (replacing a previous run's output)."""
    if out.is_dir() and not out.is_symlink() and any(out.iterdir()):
        problem = _previous_output_problem(out) if overwrite else "it is not empty"
        if problem:  # re-checked: files may have appeared while we worked
            raise CommandError(f"--out {out} changed during the run and is not replaced: {problem}")
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}{_STAGING[1]}", dir=out.absolute().parent))
        os.replace(out, old)  # onto the empty folder just made: a rename on the same filesystem
        try:
            os.replace(staging, out)
        except OSError:
            os.replace(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out)  # atomic; replaces an empty folder, fails on a non-empty one


def _augment(args, files: list[Path], staging: Path, sr: int) -> list[dict]:
    from ..data.collate import AugmentCollate
    from ..policy import LabelPolicy
    from ..presets import build_preset

    noise, rir, insert = load_banks(args, sr)
    try:
        pipe = build_preset(args.preset, noise=noise, rir=rir, insert=insert, sample_rate=sr,
                            label_policy=LabelPolicy(on_altering=args.on_altering))
    except KeyError as e:
        raise UsageError(e.args[0] if e.args else str(e)) from None
    pipe.output_level = args.output_level  # the choices are checked by argparse
    collate = AugmentCollate(pipe, ratio=1.0, seed=args.seed)
    collate.set_epoch(args.epoch)
    items = _items(args, files)
    entries = []
    batches = [items[i : i + args.batch_size] for i in range(0, len(items), args.batch_size)]
    for chunk in progress(batches, desc="augment"):
        clean = collate.collate([it for _, it in chunk])
        batch = collate.apply(clean)
        for k, (name, item) in enumerate(chunk):
            stem = f"{int(item['index']):04d}_{name}"
            write_float_wav(staging / f"{stem}_clean.wav", clean.wave[k, ..., : clean.lengths[k]], sr)
            write_float_wav(staging / f"{stem}_aug.wav", batch.wave[k, ..., : batch.lengths[k]], sr)
            entries.append({"file": f"{stem}_aug.wav", "clean": f"{stem}_clean.wav", "index": int(item["index"]),
                            "tag": batch.tags[k], "label_action": batch.label_action.action[k],
                            "record": batch.record[k]})
    written = sorted(p.name for p in staging.iterdir())
    meta = {"tool": "gpuaug augment", "preset": args.preset, "pipeline": pipe.describe(), "seed": args.seed,
            "epoch": args.epoch, "sample_rate": sr, "output_level": pipe.output_level,
            "wav_format": "WAV float32 (the samples training sees: not clipped, not quantised)",
            "files": written, "clips": entries}
    (staging / "params.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return entries


def run(args) -> int:
    _check_arguments(args)
    out_dir = Path(args.out)
    _check_out(out_dir, args.overwrite)
    files = _input_files(args, out_dir)
    staging, created = _make_staging(out_dir)
    try:
        try:
            entries = _augment(args, files, staging, args.sample_rate)
        except (ValueError, FileNotFoundError) as e:  # unreadable input, bad bank folder, ...
            raise CommandError(str(e)) from None
        except OSError as e:
            raise CommandError(f"cannot write to {out_dir}: {e}") from None
        try:
            _commit(staging, out_dir, args.overwrite)
        except OSError as e:
            raise CommandError(f"cannot move the output into {out_dir}: {e}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_created(created)
        raise
    print(f"wrote {2 * len(entries)} wav files and params.json to {out_dir}")
    return 0
