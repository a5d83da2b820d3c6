"""``fixed_subset`` / ``append`` on a cross-validation fold (issue 10 D2).

A fold is a ``torch.utils.data.Subset`` of the corpus whose items carry their corpus-wide
``index``; ``subset_indices=`` declares it, and the fixed subset is ``round(ratio * len(fold))``
of the fold's own items.
"""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Subset

from gpuaug import Pipeline
from gpuaug.data import AugmentCollate, Selector
from gpuaug.data.datasets import SyntheticSERDataset
from gpuaug.transforms import Gain

N = 30
FOLD = [3, 4, 7, 8, 11, 12, 15, 19, 20, 22, 23, 26, 27, 29]  # 14 corpus indices, not 0..13


@pytest.fixture(scope="module")
def corpus():
    return SyntheticSERDataset(N, sample_rate=16000, seed=1, min_s=0.2, max_s=0.4)


@pytest.fixture(scope="module")
def pipe():
    return Pipeline([Gain()], sample_rate=16000)


def _chosen(loader, collate, epoch):
    collate.set_epoch(epoch)
    out = {}
    for b in loader:
        for k, i in enumerate(b.index.tolist()):
            if not bool(b.is_copy[k]):
                out[i] = bool(b.augmented[k])
    return out


def test_fixed_subset_on_a_fold(corpus, pipe):
    fold = Subset(corpus, FOLD)
    with pytest.raises(ValueError, match="out of range for dataset_size=14.*subset_indices="):
        c = AugmentCollate(pipe, ratio=0.3, mode="fixed_subset", dataset_size=len(fold), seed=4)
        list(DataLoader(fold, batch_size=4, collate_fn=c))  # the second batch holds index 15
    c = AugmentCollate(pipe, ratio=0.3, mode="fixed_subset", subset_indices=fold.indices, seed=4)
    loader = DataLoader(fold, batch_size=4, collate_fn=c, shuffle=True, generator=torch.Generator().manual_seed(0))
    epochs = [_chosen(loader, c, e) for e in (0, 1, 2)]
    assert set(epochs[0]) == set(FOLD)
    assert epochs[0] == epochs[1] == epochs[2]  # the same items every epoch
    picked = sorted(i for i, on in epochs[0].items() if on)
    assert len(picked) == round(0.3 * len(FOLD)) == 4  # exactly round(ratio * len(fold))
    assert picked == c.selector.fixed_subset().tolist()
    # the choice depends on the fold's members, not their order; another seed picks others
    shuffled = Selector(0.3, "fixed_subset", seed=4, subset_indices=list(reversed(FOLD)))
    assert shuffled.fixed_subset().tolist() == picked
    assert Selector(0.3, "fixed_subset", seed=5, subset_indices=FOLD).fixed_subset().tolist() != picked
    # dataset_size agreeing with it is accepted
    same = Selector(0.3, "fixed_subset", seed=4, subset_indices=torch.tensor(FOLD), dataset_size=14)
    assert same.fixed_subset().tolist() == picked


def test_whole_corpus_as_a_fold_is_dataset_size(corpus):
    a = Selector(0.4, "fixed_subset", seed=2, dataset_size=N)
    b = Selector(0.4, "fixed_subset", seed=2, subset_indices=range(N))
    idx = torch.arange(N)
    assert torch.equal(a.select(idx, 0), b.select(idx, 0))
    assert int(a.select(idx, 0).sum()) == round(0.4 * N)


def test_append_on_a_fold(corpus, pipe):
    fold = Subset(corpus, FOLD)
    c = AugmentCollate(pipe, ratio=0.5, mode="append", subset_indices=FOLD, seed=0)
    copies = []
    for b in DataLoader(fold, batch_size=5, collate_fn=c):
        copies += b.index[b.is_copy].tolist()
    assert sorted(copies) == c.selector.fixed_subset().tolist() and len(copies) == 7


def test_items_outside_the_fold_raise_naming_the_argument(corpus, pipe):
    for mode in ("fixed_subset", "bernoulli", "append"):
        c = AugmentCollate(pipe, ratio=0.5, mode=mode, subset_indices=FOLD, seed=0)
        with pytest.raises(ValueError, match=r"item index \[0, 5\] is not in subset_indices"):
            c([corpus[3], corpus[0], corpus[5]])
    bern = AugmentCollate(pipe, ratio=0.5, subset_indices=FOLD, seed=0)  # membership only: bernoulli draws
    plain = AugmentCollate(pipe, ratio=0.5, seed=0)
    items = [corpus[i] for i in FOLD[:6]]
    assert torch.equal(bern(items).augmented, plain(items).augmented)


def test_subset_indices_are_checked():
    with pytest.raises(ValueError, match="subset_indices holds repeated indices \\[4\\]"):
        Selector(0.5, "fixed_subset", subset_indices=[3, 4, 4])
    with pytest.raises(ValueError, match="subset_indices is empty"):
        Selector(0.5, "fixed_subset", subset_indices=[])
    with pytest.raises(ValueError, match="subset_indices must hold integer"):
        Selector(0.5, "fixed_subset", subset_indices=[1.5, 2.0])
    with pytest.raises(ValueError, match="subset_indices must be one-dimensional"):
        Selector(0.5, "fixed_subset", subset_indices=[[1, 2]])
    with pytest.raises(ValueError, match="dataset_size=30 does not match len\\(subset_indices\\)=3"):
        Selector(0.5, "fixed_subset", subset_indices=[1, 2, 3], dataset_size=30)
    with pytest.raises(ValueError, match="dataset_size must be an integer >= 1"):
        Selector(0.5, "fixed_subset", dataset_size=0)
    with pytest.raises(ValueError, match="needs dataset_size .* or subset_indices"):
        Selector(0.5, "fixed_subset")
