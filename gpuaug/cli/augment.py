"""``gpuaug augment``: apply a pipeline to audio files (or the built-in corpus) for listening.

Writes ``NNNN_<name>_clean.wav`` and ``NNNN_<name>_aug.wav`` per clip and ``params.json``
with every clip's perception tag, label action and full augmentation record.
"""
from __future__ import annotations

import json
from pathlib import Path


from ..data.banks import AUDIO_SUFFIXES
from ..data.collate import AugmentCollate
from ..policy import LabelPolicy, build_preset
from .banks import add_bank_arguments, load_banks
from .progress import progress
from .wavfile import write_wav


def add_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="*", help="audio files or folders (default: the built-in corpus)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--preset", default="retaining", help="preset name, or seed000:<condition>")
    parser.add_argument("--clips", type=int, default=8, help="built-in corpus size when no inputs are given")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epoch", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--on-altering", default="mask", choices=("drop", "mask", "relabel"))
    add_bank_arguments(parser)


def _items(args) -> list[tuple[str, dict]]:
    if not args.inputs:
        from ..data.datasets import SyntheticSERDataset

        ds = SyntheticSERDataset(args.clips, sample_rate=args.sample_rate, seed=args.seed)
        return [(f"synthetic{i}_{ds[i].get('label_name', '')}", ds[i]) for i in range(len(ds))]
    from ..data.audio_io import read_audio

    files: list[Path] = []
    for name in args.inputs:
        p = Path(name)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES)
        elif p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    out = []
    for i, f in enumerate(files):
        wave, sr = read_audio(f)
        out.append((f.stem, {"wave": wave, "sample_rate": sr, "index": i}))
    return out


def run(args) -> int:
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    sr = args.sample_rate
    noise, rir, insert = load_banks(args, sr)
    pipe = build_preset(args.preset, noise=noise, rir=rir, insert=insert, sample_rate=sr,
                        label_policy=LabelPolicy(on_altering=args.on_altering))
    collate = AugmentCollate(pipe, ratio=1.0, seed=args.seed)
    collate.set_epoch(args.epoch)
    items = _items(args)
    entries = []
    batches = [items[i : i + args.batch_size] for i in range(0, len(items), args.batch_size)]
    for chunk in progress(batches, desc="augment"):
        clean = collate.collate([it for _, it in chunk])
        batch = collate.apply(clean)
        for k, (name, item) in enumerate(chunk):
            stem = f"{int(item['index']):04d}_{name}"
            write_wav(out_dir / f"{stem}_clean.wav", clean.wave[k, ..., : clean.lengths[k]], sr)
            write_wav(out_dir / f"{stem}_aug.wav", batch.wave[k, ..., : batch.lengths[k]], sr)
            entries.append({"file": f"{stem}_aug.wav", "clean": f"{stem}_clean.wav", "index": int(item["index"]),
                            "tag": batch.tags[k], "label_action": batch.label_action.action[k],
                            "record": batch.record[k]})
    meta = {"preset": args.preset, "pipeline": pipe.describe(), "seed": args.seed, "epoch": args.epoch,
            "sample_rate": sr, "clips": entries}
    (out_dir / "params.json").write_text(json.dumps(meta, indent=1))
    print(f"wrote {2 * len(entries)} wav files and params.json to {out_dir}")
    return 0
