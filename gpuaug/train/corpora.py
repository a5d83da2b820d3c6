"""Opening a training corpus from a spec string: EmoDB, IEMOCAP, a manifest or the synthetic corpus.

Specs (:func:`open_corpus`):

* ``emodb:PATH``: :class:`gpuaug.data.emodb.EmoDBDataset` (``PATH`` holds ``wav/``);
* ``iemocap:PATH``: :class:`gpuaug.data.iemocap.IEMOCAPDataset` (``PATH`` holds ``Session1`` ...);
* ``manifest:PATH``: :class:`gpuaug.data.datasets.ManifestDataset` (a CSV / TSV / JSONL file);
* ``synthetic`` or ``synthetic:N``: :class:`gpuaug.data.datasets.SyntheticSERDataset` with
  ``N`` items (default 256: 8 speakers ``spk0`` .. ``spk7`` drawn per item, labels cycling
  over 4 emotions, sessions ``session1`` .. ``session4`` of two speakers each, so speaker and
  session folds are both meaningful).

Keyword arguments of :func:`open_corpus` go to the dataset's constructor (e.g.
``classes=`` / ``sessions=`` for IEMOCAP, ``label_names=`` for a manifest, ``seed=`` for
the synthetic corpus).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch.utils.data import Dataset

__all__ = ["Corpus", "open_corpus", "CORPUS_SCHEMES"]

#: Spec schemes :func:`open_corpus` knows.
CORPUS_SCHEMES = ("emodb", "iemocap", "manifest", "synthetic")


@dataclass
class Corpus:
    """A dataset with the per-item metadata folds and training need, read without audio.

    Attributes:
        name: the scheme (``emodb``, ``iemocap``, ``manifest``, ``synthetic``).
        spec: the spec it was opened from.
        dataset: the dataset (items follow the dataset item contract).
        classes: class names in class-id order.
        speakers: speaker per item (``None`` entries where a manifest gives none).
        sessions: session per item, or ``None`` when the corpus has no sessions (EmoDB, a
            manifest without a ``session`` column).
        utterances: an id per item, unique (EmoDB / IEMOCAP file stems, manifest file stems
            or relative paths, ``synthetic-00012``); fold files name items by these.
        sample_rate: the corpus' native rate in Hz (a manifest: its first file's).
        aux: whether per-item activation / valence bins exist (:attr:`bins`).
        labels: class id per item (``None`` for a manifest without labels).
        bins: ``(activation_bin, valence_bin)`` per item (0 low / 1 mid / 2 high) when
            ``aux``, else ``None``. EmoDB: the convention of
            :data:`gpuaug.data.emodb.EMODB_AROUSAL_VALENCE`; IEMOCAP, synthetic and manifests
            with dimensions: :func:`gpuaug.data.iemocap.bin_dimension` of the 1..5 ratings.
    """

    name: str
    spec: str
    dataset: Dataset
    classes: tuple
    speakers: list
    sessions: list | None
    utterances: list
    sample_rate: int
    aux: bool
    labels: list | None = None
    bins: list | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.utterances)


def _file_rate(path: Path, spec: str) -> int:
    import soundfile as sf

    try:
        return int(sf.info(str(path)).samplerate)
    except Exception as e:  # noqa: BLE001 - libsndfile raises several types
        raise ValueError(f"corpus {spec!r}: cannot read the sample rate of {path}: {e}") from e


def _dim_bins(dims) -> list[tuple[int, int]]:
    """``(activation_bin, valence_bin)`` per row of ``(N, 3)`` valence, activation, dominance."""
    import torch

    from ..data.iemocap import bin_dimension

    d = torch.as_tensor(dims, dtype=torch.float64).reshape(-1, 3)
    if d.shape[0] == 0:
        return []
    act, val = bin_dimension(d[:, 1].contiguous()), bin_dimension(d[:, 0].contiguous())
    return list(zip(act.tolist(), val.tolist()))


def _existing(path: str, spec: str) -> Path:
    if not path:
        raise ValueError(f"corpus spec {spec!r} has no path after the ':'")
    p = Path(path).expanduser()
    if not p.exists():
        raise ValueError(f"corpus spec {spec!r}: path {p} does not exist")
    return p


def _emodb(spec: str, path: str, kw: dict) -> Corpus:
    from ..data.emodb import EmoDBDataset

    ds = EmoDBDataset(_existing(path, spec), **kw)
    return Corpus("emodb", spec, ds, tuple(ds.classes), ds.speakers, None, ds.utterances,
                  _file_rate(ds._records[0]["wav"], spec), True, ds.labels,
                  list(zip(ds.activation_bins, ds.valence_bins)))


def _iemocap(spec: str, path: str, kw: dict) -> Corpus:
    from ..data.iemocap import IEMOCAPDataset

    ds = IEMOCAPDataset(_existing(path, spec), **kw)
    return Corpus("iemocap", spec, ds, tuple(ds.label_names), ds.speakers, ds.sessions, ds.utterances,
                  _file_rate(ds._records[0]["wav"], spec), True, ds.labels, _dim_bins(ds.dims))


def _manifest(spec: str, path: str, kw: dict) -> Corpus:
    import math

    from ..data.datasets import ManifestDataset

    p = _existing(path, spec)
    if p.is_dir():
        raise ValueError(f"corpus spec {spec!r}: {p} is a folder; give the manifest file (.csv, .tsv, .jsonl)")
    ds = ManifestDataset(p, **kw)
    recs = ds._records
    paths = [r["path"] for r in recs]
    stems = [q.stem for q in paths]
    if len(set(stems)) == len(stems):
        utts = stems
    else:  # stems collide (e.g. a/x.wav and b/x.wav): the paths relative to the root
        utts = []
        for q in paths:
            try:
                utts.append(q.relative_to(ds.root).as_posix())
            except ValueError:
                utts.append(q.as_posix())
    sessions = ds.sessions
    has_dims = all("dims" in r for r in recs)
    in_scale = has_dims and all(1.0 <= d <= 5.0 and math.isfinite(d) for r in recs for d in r["dims"])
    bins = _dim_bins([r["dims"] for r in recs]) if in_scale else None
    return Corpus("manifest", spec, ds, tuple(ds.label_names), ds.speakers,
                  sessions if any(s is not None for s in sessions) else None, utts,
                  _file_rate(paths[0], spec), bins is not None, ds.labels if ds.has_labels else None, bins)


def _synthetic(spec: str, arg: str | None, kw: dict) -> Corpus:
    from ..data.datasets import SyntheticSERDataset
    from ..data.synthetic import synthetic_annotation

    if arg is None:
        ds = SyntheticSERDataset(**kw)
    else:
        try:
            n = int(arg)
        except ValueError:
            raise ValueError(f"corpus spec {spec!r}: expected synthetic:N with an item count N, got {arg!r}") from None
        if n < 1:
            raise ValueError(f"corpus spec {spec!r}: the item count must be >= 1, got {n}")
        ds = SyntheticSERDataset(n, **kw)
    # one annotation pass (the dataset's speakers / sessions properties each make their own);
    # the names follow SyntheticSERDataset.__getitem__ (a test checks they agree)
    anns = [synthetic_annotation(i, **ds._kw) for i in range(len(ds))]
    speakers = [f"spk{a['speaker']}" for a in anns]
    sessions = [f"session{a['speaker'] // 2 + 1}" for a in anns]
    width = max(5, len(str(len(ds) - 1)))
    return Corpus("synthetic", spec, ds, tuple(ds.label_names), speakers, sessions,
                  [f"synthetic-{i:0{width}d}" for i in range(len(ds))], ds.sample_rate, True, ds.labels,
                  _dim_bins([a["dims"].tolist() for a in anns]))


def open_corpus(spec: str, **kwargs) -> Corpus:
    """Open the corpus named by ``spec`` (see the module docstring for the schemes).

    Args:
        spec: ``emodb:PATH``, ``iemocap:PATH``, ``manifest:PATH``, ``synthetic`` or
            ``synthetic:N``.
        **kwargs: passed to the dataset's constructor.

    Returns:
        a :class:`Corpus` (no audio is read, except the header of one file for the rate).

    Raises:
        ValueError: an unknown scheme, a missing path or a bad item count (the message
            names the spec); the datasets' own errors otherwise.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"corpus spec must be a non-empty string like 'emodb:/data/emodb', got {spec!r}")
    spec = spec.strip()
    scheme, sep, rest = spec.partition(":")
    scheme = scheme.strip().lower()
    if scheme == "synthetic":
        return _synthetic(spec, rest.strip() if sep else None, kwargs)
    openers = {"emodb": _emodb, "iemocap": _iemocap, "manifest": _manifest}
    if scheme not in openers or not sep:
        raise ValueError(f"unknown corpus spec {spec!r}: expected one of emodb:PATH, iemocap:PATH, manifest:PATH, "
                         "synthetic, synthetic:N")
    return openers[scheme](spec, rest.strip(), kwargs)
