"""Cross-validation folds: leave-one-speaker-out, speaker k-fold, leave-one-session-out, fold files.

Every fold has disjoint ``train`` / ``valid`` / ``test`` index arrays (int64, sorted) and a
``speaker_independent`` flag that is **computed** from the speakers of its items
(:func:`speaker_overlap`), never assumed: a fold is speaker independent only when every item
has a known speaker and no speaker has items in two of the splits. Published folds are not
always speaker independent: EmoBox's EmoDB folds put 9 to 10 of the 10 speakers in every
test fold, so they are flagged ``False``.

Protocols (:func:`make_folds`):

* ``"speaker"``: :func:`leave_one_speaker_out` (EmoDB: 10 folds of 8 train / 1 valid / 1
  test speakers);
* ``"speaker-kfold:K"``: :func:`speaker_kfold`;
* ``"session"``: :func:`leave_one_session_out` (IEMOCAP: 5 folds of 3 / 1 / 1 sessions);
* ``"file:PATH"``: :func:`read_fold_file` (EmoBox folder or ``utterance,fold,split`` CSV).
"""
from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.records import read_jsonl

__all__ = ["Fold", "speaker_overlap", "leave_one_speaker_out", "speaker_kfold", "leave_one_session_out",
           "read_fold_file", "carve_validation", "make_folds", "FOLD_PROTOCOLS"]

#: Protocol names :func:`make_folds` knows (``K`` and ``PATH`` are parameters).
FOLD_PROTOCOLS = ("speaker", "speaker-kfold:K", "session", "file:PATH")
_SPLITS = ("train", "valid", "test")


@dataclass
class Fold:
    """One cross-validation fold.

    Attributes:
        name: e.g. ``speaker-03``, ``session-Ses01``, ``fold_1``.
        train, valid, test: int64 arrays of dataset indices, sorted, pairwise disjoint.
        test_speakers: the distinct known speakers of ``test``, sorted.
        speaker_independent: no speaker has items in two splits and every item's speaker is
            known (computed by :meth:`build` from the speakers, never assumed).
    """

    name: str
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    test_speakers: tuple
    speaker_independent: bool

    @classmethod
    def build(cls, name: str, train, valid, test, speakers: Sequence | None = None) -> "Fold":
        """A fold from index lists, with ``test_speakers`` and ``speaker_independent``
        computed from ``speakers`` (one per dataset item; ``None``: unknown, so the fold is
        not speaker independent).

        Raises:
            ValueError: an index that is not an integer, negative or (with ``speakers``) past
                the dataset; an index in two splits; an empty ``train`` or ``test``.
        """
        n = None if speakers is None else len(speakers)
        arrays = {}
        for split, idx in zip(_SPLITS, (train, valid, test)):
            a = np.asarray([] if idx is None else idx).reshape(-1)
            if a.size == 0:
                a = np.zeros(0, dtype=np.int64)
            elif a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
                raise ValueError(f"fold {name!r}: {split} indices must be integers, got dtype {a.dtype}")
            elif not np.issubdtype(a.dtype, np.integer):
                if not (np.all(np.isfinite(a)) and np.all(a == np.round(a))):
                    raise ValueError(f"fold {name!r}: {split} indices must be integers")
            a = a.astype(np.int64)
            u = np.unique(a)
            if u.size != a.size:
                raise ValueError(f"fold {name!r}: {a.size - u.size} duplicate index(es) in {split}")
            a = u
            if a.size and a[0] < 0:
                raise ValueError(f"fold {name!r}: negative {split} index {int(a[0])}")
            if a.size and n is not None and a[-1] >= n:
                raise ValueError(f"fold {name!r}: {split} index {int(a[-1])} out of range for {n} items")
            arrays[split] = a
        for i, a in enumerate(_SPLITS):
            for b in _SPLITS[i + 1:]:
                both = np.intersect1d(arrays[a], arrays[b])
                if both.size:
                    raise ValueError(f"fold {name!r}: {both.size} item(s) in both {a} and {b}, "
                                     f"e.g. {both[:5].tolist()}")
        if arrays["train"].size == 0 or arrays["test"].size == 0:
            raise ValueError(f"fold {name!r}: empty {'train' if arrays['train'].size == 0 else 'test'} split")
        fold = cls(name, arrays["train"], arrays["valid"], arrays["test"], (), False)
        if speakers is not None:
            spk = list(speakers)
            fold.test_speakers = tuple(sorted({str(spk[i]) for i in fold.test.tolist() if spk[i] is not None}))
            known = all(spk[i] is not None for a in arrays.values() for i in a.tolist())
            fold.speaker_independent = known and not speaker_overlap(fold, spk)
        return fold

    def sizes(self) -> tuple[int, int, int]:
        """``(len(train), len(valid), len(test))``."""
        return len(self.train), len(self.valid), len(self.test)


def speaker_overlap(fold: Fold, speakers: Sequence) -> set:
    """The speakers with items in two or more of ``fold``'s splits (``None`` speakers, i.e.
    unknown ones, are not counted here; :meth:`Fold.build` treats them as not independent)."""
    sets = [{speakers[i] for i in getattr(fold, s).tolist() if speakers[i] is not None} for s in _SPLITS]
    return (sets[0] & sets[1]) | (sets[0] & sets[2]) | (sets[1] & sets[2])


def _groups(values: Sequence, what: str) -> list:
    missing = [i for i, v in enumerate(values) if v is None]
    if missing:
        raise ValueError(f"{len(missing)} item(s) have no {what} (e.g. items {missing[:5]}); "
                         f"{what} folds need every item's {what}")
    return sorted(set(values), key=lambda v: (str(type(v)), v))


def _rotate(values: Sequence, blocks: list[list], prefix: str, speakers: Sequence | None,
            names: list[str] | None = None) -> list[Fold]:
    """Fold ``i``: test = items of ``blocks[i]``, valid = items of ``blocks[i + 1]`` (cyclic),
    train = the rest."""
    where = {}
    for b, block in enumerate(blocks):
        for g in block:
            where[g] = b
    block_of = np.array([where[v] for v in values], dtype=np.int64)
    k = len(blocks)
    folds = []
    for i in range(k):
        test = np.flatnonzero(block_of == i)
        valid = np.flatnonzero(block_of == (i + 1) % k)
        train = np.flatnonzero((block_of != i) & (block_of != (i + 1) % k))
        name = names[i] if names else f"{prefix}-{i + 1}"
        folds.append(Fold.build(name, train, valid, test, speakers))
    return folds


def _leave_one_out(values: list, what: str, speakers) -> list[Fold]:
    groups = _groups(values, what)
    if len(groups) < 3:
        raise ValueError(f"leave-one-{what}-out needs >= 3 {what}s (test, valid and train), got {groups}")
    return _rotate(values, [[g] for g in groups], what, speakers, [f"{what}-{g}" for g in groups])


def leave_one_speaker_out(speakers: Sequence) -> list[Fold]:
    """One fold per speaker: that speaker is the test set, the next speaker in sorted order
    (cyclic) the validation set, all others train (10 EmoDB speakers: 8 / 1 / 1).

    Raises:
        ValueError: fewer than 3 distinct speakers, or an item without speaker.
    """
    speakers = list(speakers)
    return _leave_one_out(speakers, "speaker", speakers)


def speaker_kfold(speakers: Sequence, k: int, seed: int = 0) -> list[Fold]:
    """``k`` speaker-disjoint folds: the distinct speakers, sorted then shuffled by
    ``numpy.random.default_rng(seed)``, are dealt round-robin into ``k`` groups (sizes differ
    by at most one speaker); fold ``i`` tests group ``i``, validates on group ``i + 1``
    (cyclic) and trains on the others.

    Raises:
        ValueError: ``k < 3``, more groups than speakers, or an item without speaker.
    """
    speakers = list(speakers)
    if isinstance(k, bool) or int(k) != k or k < 3:
        raise ValueError(f"speaker k-fold needs an integer k >= 3 (test, valid and train groups), got {k!r}")
    k = int(k)
    groups = _groups(speakers, "speaker")
    if k > len(groups):
        raise ValueError(f"speaker k-fold with k={k} needs >= {k} speakers, got {len(groups)}")
    order = np.random.default_rng(int(seed)).permutation(len(groups))
    blocks = [[groups[j] for j in order[i::k]] for i in range(k)]
    return _rotate(speakers, blocks, f"speaker-kfold{k}", speakers)


def leave_one_session_out(sessions: Sequence, speakers: Sequence | None = None) -> list[Fold]:
    """One fold per session (the IEMOCAP protocol): that session is the test set, the next
    session in sorted order (cyclic) the validation set, the others train (5 IEMOCAP sessions:
    3 / 1 / 1).

    Args:
        sessions: session per item.
        speakers: speaker per item, to compute ``speaker_independent`` / ``test_speakers``
            (without it the folds are flagged not speaker independent: it cannot be checked).

    Raises:
        ValueError: fewer than 3 distinct sessions, or an item without session.
    """
    sessions = list(sessions)
    if speakers is not None and len(speakers) != len(sessions):
        raise ValueError(f"{len(speakers)} speakers for {len(sessions)} sessions")
    return _leave_one_out(sessions, "session", speakers)


def carve_validation(train: Sequence[int], *, labels: Sequence[int] | None = None, fraction: float = 0.1,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split a validation set off ``train`` deterministically.

    Each class (all of ``train`` when ``labels`` is None) contributes
    ``floor(fraction * n_class + 0.5)`` items, chosen by a permutation from
    ``numpy.random.default_rng(seed)`` of its indices sorted ascending (classes in sorted
    order, one permutation each). When that rounds to nothing in total but ``train`` has
    two or more items, one item of the largest class is taken. The split is random over
    items, so it is speaker dependent whatever the folds are.

    Returns:
        ``(train, valid)``: sorted int64 arrays.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must lie in [0, 1), got {fraction}")
    train = np.unique(np.asarray(train, dtype=np.int64).reshape(-1))
    rng = np.random.default_rng(int(seed))
    if labels is None:
        strata = [train]
    else:
        lab = np.asarray(labels)
        strata = [train[lab[train] == c] for c in np.unique(lab[train])] if train.size else []
    picks, largest = [], None
    for members in strata:
        perm = members[rng.permutation(members.size)]
        picks.append(perm[: int(math.floor(fraction * members.size + 0.5))])
        if largest is None or members.size > largest.size:
            largest = perm
    valid = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    if valid.size == 0 and fraction > 0 and train.size >= 2:
        valid = largest[:1]
    valid = np.sort(valid).astype(np.int64)
    return np.setdiff1d(train, valid).astype(np.int64), valid


class _Matcher:
    """Fold-file ids -> dataset indices, collecting the ids that match no utterance."""

    def __init__(self, utterances: Sequence[str], path: Path):
        self.index = {}
        for i, u in enumerate(utterances):
            if str(u) in self.index:
                raise ValueError(f"utterance id {u!r} is not unique in the corpus (items {self.index[str(u)]} and {i})")
            self.index[str(u)] = i
        self.path = path
        self.unknown: list[str] = []

    def find(self, *candidates: str | None) -> int | None:
        for c in candidates:
            if c is not None and c in self.index:
                return self.index[c]
        first = next((c for c in candidates if c), "<empty>")
        self.unknown.append(first)
        return None

    def check(self) -> None:
        if self.unknown:
            u = self.unknown
            raise ValueError(f"fold file {self.path}: {len(u)} utterance(s) match no item of the corpus, "
                             f"e.g. {u[:5]}")


def _emobox_files(root: Path, corpus: str | None) -> dict[int, dict[str, Path]]:
    pat = re.compile(r"^(?P<corpus>.+)_(?P<split>train|test)_fold_(?P<k>\d+)\.jsonl$")
    found: dict[str, dict[int, dict[str, Path]]] = {}
    for p in sorted(root.rglob("*_fold_*.jsonl")):
        m = pat.match(p.name)
        if m:
            slot = found.setdefault(m["corpus"], {}).setdefault(int(m["k"]), {})
            if m["split"] in slot:
                raise ValueError(f"fold folder {root}: {slot[m['split']]} and {p} are the same fold file")
            slot[m["split"]] = p
    if not found:
        raise ValueError(f"fold folder {root} has no EmoBox fold files (<corpus>_train_fold_K.jsonl / "
                         "<corpus>_test_fold_K.jsonl)")
    if corpus is None:
        if len(found) > 1:
            raise ValueError(f"fold folder {root} holds folds of several corpora {sorted(found)}; pass corpus=")
        corpus = next(iter(found))
    if corpus not in found:
        raise ValueError(f"fold folder {root} has no folds for corpus {corpus!r}; found {sorted(found)}")
    folds = found[corpus]
    for k, slot in sorted(folds.items()):
        for split in ("train", "test"):
            if split not in slot:
                raise ValueError(f"fold folder {root}: fold {k} of {corpus!r} has no {corpus}_{split}_fold_{k}.jsonl")
    return {k: folds[k] for k in sorted(folds)}


def _read_emobox(root: Path, utterances, labels, speakers, fraction, seed, corpus) -> list[Fold]:
    files = _emobox_files(root, corpus)
    out, matchers = [], []
    for k, slot in files.items():
        idx = {}
        for split, path in slot.items():
            match = _Matcher(utterances, path)
            matchers.append(match)
            rows = []
            for n, row in read_jsonl(path, path.read_text(encoding="utf-8-sig")):
                if not isinstance(row.get("key"), str):
                    raise ValueError(f"{path}:{n}: expected a JSON object with a string 'key'")
                key = row["key"]
                prefixes = {str(row.get("dataset") or ""), path.name.split(f"_{split}_fold_")[0]} - {""}
                stripped = [key[len(p) + 1:] for p in sorted(prefixes) if key.startswith(p + "-")]
                wav = Path(str(row["wav"])).stem if row.get("wav") else None
                rows.append(match.find(key, *stripped, wav))
            idx[split] = [i for i in rows if i is not None]
        for m in matchers:
            m.check()
        matchers = []
        train, valid = carve_validation(idx["train"], labels=labels, fraction=fraction, seed=seed + k)
        out.append(Fold.build(f"fold_{k}", train, valid, idx["test"], speakers))
    return out


def _read_csv(path: Path, utterances, labels, speakers, fraction, seed) -> list[Fold]:
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    cols = [c.strip() for c in (reader.fieldnames or [])]
    need = {"utterance", "fold", "split"}
    if not need <= set(cols):
        raise ValueError(f"fold file {path}: expected columns utterance,fold,split; got {cols}")
    reader.fieldnames = cols
    match = _Matcher(utterances, path)
    folds: dict[str, dict[str, list[int]]] = {}
    seen: dict[tuple[str, int], int] = {}
    for n, row in enumerate(reader, 2):
        utt, fold, split = (str(row.get(c) or "").strip() for c in ("utterance", "fold", "split"))
        if not utt and not fold and not split:
            continue
        if split.lower() not in _SPLITS:
            raise ValueError(f"{path}:{n}: split must be train, valid or test, got {split!r}")
        if not fold:
            raise ValueError(f"{path}:{n}: empty fold")
        i = match.find(utt)
        if i is None:
            continue
        if (fold, i) in seen:
            raise ValueError(f"{path}:{n}: utterance {utt!r} is listed twice in fold {fold!r} "
                             f"(first on line {seen[(fold, i)]})")
        seen[(fold, i)] = n
        folds.setdefault(fold, {s: [] for s in _SPLITS})[split.lower()].append(i)
    match.check()
    if not folds:
        raise ValueError(f"fold file {path} lists no fold")
    out = []
    for j, (fold, idx) in enumerate(folds.items()):
        train, valid = idx["train"], idx["valid"]
        if not valid:
            train, valid = carve_validation(train, labels=labels, fraction=fraction, seed=seed + j)
        out.append(Fold.build(f"fold_{fold}", train, valid, idx["test"], speakers))
    return out


def read_fold_file(path_or_dir: str | Path, utterances: Sequence[str], *, labels: Sequence[int] | None = None,
                   speakers: Sequence | None = None, valid_fraction: float = 0.1, seed: int = 0,
                   corpus: str | None = None) -> list[Fold]:
    """Read published folds, matched to a corpus' utterance ids.

    Two layouts:

    * **EmoBox** (a folder): ``<corpus>_train_fold_K.jsonl`` and ``<corpus>_test_fold_K.jsonl``,
      directly in the folder or in sub-folders (EmoBox's ``fold_K/``), one JSON object per
      line. A row's ``key`` (``"emodb-03a01Wa"``) is matched to an utterance id as written,
      then without its ``<dataset>-`` / ``<corpus>-`` prefix, then by its ``wav`` file stem.
      EmoBox gives no validation set: one is carved from each fold's train set by
      :func:`carve_validation` (``valid_fraction`` of it, stratified by ``labels`` when
      given, seed ``seed + K``).
    * **CSV** (``.csv``, or ``.tsv`` with tabs): a header with ``utterance,fold,split``
      (``split`` is ``train``, ``valid`` or ``test``), one row per utterance and fold; folds
      in order of first appearance, named ``fold_<fold>``. A fold with no ``valid`` rows gets
      one carved from its train rows as above (seed ``seed + position``).

    Args:
        path_or_dir: the EmoBox folder or the CSV file.
        utterances: the corpus' utterance ids (:attr:`gpuaug.train.corpora.Corpus.utterances`).
        labels: class id per item, to stratify the carved validation sets.
        speakers: speaker per item, to compute ``speaker_independent`` (without it every
            fold is flagged ``False``: independence cannot be checked).
        valid_fraction: share of train carved as validation where the file has none.
        seed: seed of the carving.
        corpus: which corpus' files to read when an EmoBox folder holds several.

    Returns:
        the folds, in fold order.

    Raises:
        FileNotFoundError: no such path. ValueError: a missing fold file or column, a bad
        split, an utterance listed twice in a fold or in two splits of one fold, and
        utterances that match no item (the message names the first few and the file).
    """
    path = Path(path_or_dir)
    if not path.exists():
        raise FileNotFoundError(f"fold file or folder not found: {path}")
    utterances = [str(u) for u in utterances]
    for what, seq in (("labels", labels), ("speakers", speakers)):
        if seq is not None and len(seq) != len(utterances):
            raise ValueError(f"{len(seq)} {what} for {len(utterances)} utterances")
    if path.is_dir():
        return _read_emobox(path, utterances, labels, speakers, valid_fraction, int(seed), corpus)
    if path.suffix.lower() in (".csv", ".tsv"):
        return _read_csv(path, utterances, labels, speakers, valid_fraction, int(seed))
    raise ValueError(f"fold file {path}: expected an EmoBox fold folder or a .csv / .tsv with utterance,fold,split")


def make_folds(corpus, protocol: str, **kwargs) -> list[Fold]:
    """The folds of ``corpus`` (a :class:`gpuaug.train.corpora.Corpus`) under ``protocol``.

    Protocols: ``"speaker"`` (:func:`leave_one_speaker_out`), ``"speaker-kfold:K"``
    (:func:`speaker_kfold`, ``seed=`` accepted), ``"session"`` (:func:`leave_one_session_out`
    with the corpus' speakers), ``"file:PATH"`` (:func:`read_fold_file` with the corpus'
    utterances, labels and speakers; ``valid_fraction=``, ``seed=``, ``corpus=`` accepted).

    Raises:
        ValueError: an unknown protocol, a corpus without sessions for ``"session"``, or
            the errors of the functions above.
    """
    proto = str(protocol).strip()
    head, sep, arg = proto.partition(":")
    head = head.strip().lower()

    def only(*allowed):
        extra = sorted(set(kwargs) - set(allowed))
        if extra:
            raise TypeError(f"fold protocol {proto!r} takes no argument(s) {extra}")

    if head == "speaker" and not sep:
        only()
        return leave_one_speaker_out(corpus.speakers)
    if head == "speaker-kfold" and sep:
        only("seed")
        try:
            k = int(arg)
        except ValueError:
            raise ValueError(f"fold protocol {proto!r}: K must be an integer (speaker-kfold:5)") from None
        return speaker_kfold(corpus.speakers, k, seed=kwargs.get("seed", 0))
    if head == "session" and not sep:
        only()
        if corpus.sessions is None:
            raise ValueError(f"corpus {corpus.spec!r} has no sessions; use the 'speaker' protocol")
        return leave_one_session_out(corpus.sessions, speakers=corpus.speakers)
    if head == "file" and sep and arg.strip():
        only("valid_fraction", "seed", "corpus")
        return read_fold_file(arg.strip(), corpus.utterances, labels=corpus.labels, speakers=corpus.speakers,
                              **kwargs)
    raise ValueError(f"unknown fold protocol {proto!r}: expected one of {', '.join(FOLD_PROTOCOLS)}")
