"""ser_loss obeys every label action; class weights; aux targets from (relabelled) dimensions."""
from __future__ import annotations

import math

import numpy as np

import pytest
import torch
from torch.nn import functional as F

from gpuaug.data.batch import Batch
from gpuaug.policy.labels import LabelAction
from gpuaug.train.loss import aux_targets_from_dims, class_weights, ser_loss


def _action(actions, delta=None):
    """A LabelAction as LabelPolicy builds it, from per-clip action strings."""
    keep = torch.tensor([a != "drop" for a in actions])
    loss_weight = torch.tensor([1.0 if a == "keep" else 0.0 for a in actions])
    dim_weight = torch.tensor([1.0 if a in ("keep", "relabel") else 0.0 for a in actions])
    delta = torch.zeros(len(actions), 2) if delta is None else torch.as_tensor(delta, dtype=torch.float32)
    return LabelAction(keep, loss_weight, delta, dim_weight, list(actions))


def _outputs(B=4, C=4, seed=0, aux=True):
    g = torch.Generator().manual_seed(seed)
    out = {"emotion": torch.randn(B, C, generator=g, requires_grad=True)}
    if aux:
        out["activation"] = torch.randn(B, 3, generator=g, requires_grad=True)
        out["valence"] = torch.randn(B, 3, generator=g, requires_grad=True)
    return out


LABELS = torch.tensor([0, 1, 2, 3])


def test_class_weights_balanced_formula():
    y = torch.tensor([0, 0, 0, 1, 2, 2])  # n = 6, 3 classes present: 6 / (3 * count)
    w = class_weights(y, 4)
    torch.testing.assert_close(w, torch.tensor([6 / 9, 2.0, 1.0, 0.0]))
    sk = pytest.importorskip("sklearn.utils.class_weight")
    ref = sk.compute_class_weight("balanced", classes=np.array([0, 1, 2]), y=y.numpy())
    torch.testing.assert_close(w[:3].double(), torch.from_numpy(ref))
    with pytest.raises(ValueError, match="lie in"):
        class_weights([0, 4], 4)
    with pytest.raises(ValueError, match="at least one"):
        class_weights([], 4)


def test_no_action_equals_torch_weighted_cross_entropy():
    out = _outputs(aux=False)
    w = torch.tensor([0.5, 2.0, 1.0, 3.0])
    loss, parts = ser_loss(out, LABELS, class_weights=w)
    torch.testing.assert_close(loss, F.cross_entropy(out["emotion"], LABELS, weight=w))
    torch.testing.assert_close(parts["emotion_weight"], w.sum())
    loss_keep, _ = ser_loss(out, LABELS, _action(["keep"] * 4), class_weights=w)
    torch.testing.assert_close(loss_keep, loss)  # keep: unchanged
    torch.testing.assert_close(ser_loss(out["emotion"], LABELS)[0], F.cross_entropy(out["emotion"], LABELS))


@pytest.mark.parametrize("action", ["mask", "drop", "relabel"])
def test_masked_dropped_relabelled_clip_leaves_the_categorical_loss(action):
    out = _outputs(aux=False)
    w = torch.tensor([0.5, 2.0, 1.0, 3.0])
    loss, parts = ser_loss(out, LABELS, _action(["keep", action, "keep", "keep"]), class_weights=w)
    rest = [0, 2, 3]
    expected = F.cross_entropy(out["emotion"][rest], LABELS[rest], weight=w)  # normaliser without clip 1
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(parts["emotion_weight"], w[rest].sum())
    loss.backward()
    assert torch.all(out["emotion"].grad[1] == 0) and torch.any(out["emotion"].grad[0] != 0)


def test_drop_gives_the_same_loss_with_or_without_batch_kept():
    out = _outputs(aux=False)
    dims = torch.full((4, 3), 3.0)
    batch = Batch(wave=torch.zeros(4, 10), lengths=torch.full((4,), 10), index=torch.arange(4), sample_rate=16000,
                  labels=LABELS, dims=dims, label_action=_action(["keep", "drop", "keep", "drop"]))
    full, _ = ser_loss(out, batch.labels, batch.label_action)
    kept = batch.kept()
    rows = kept.index
    sub, _ = ser_loss({"emotion": out["emotion"][rows]}, kept.labels, kept.label_action)
    torch.testing.assert_close(full, sub)
    torch.testing.assert_close(full, F.cross_entropy(out["emotion"][[0, 2]], LABELS[[0, 2]]))


def test_everything_masked_is_zero_with_grad_and_no_nan():
    out = _outputs()
    for actions in (["mask"] * 4, ["drop"] * 4, ["mask", "drop", "drop", "mask"]):
        loss, parts = ser_loss(out, LABELS, _action(actions), aux_targets=(torch.tensor([0, 1, 2, 0]),) * 2)
        assert loss.item() == 0.0 and loss.grad_fn is not None
        loss.backward()
        for v in out.values():
            assert torch.all(v.grad == 0) and not torch.isnan(v.grad).any()
            v.grad = None
    # class weight 0 for every clip's class: also 0, not NaN
    loss, _ = ser_loss(out, torch.tensor([3, 3, 3, 3]), class_weights=torch.tensor([1.0, 1.0, 1.0, 0.0]))
    assert loss.item() == 0.0 and loss.grad_fn is not None


def test_relabel_moves_the_aux_bin_targets_and_trains_the_aux_heads():
    dims = torch.tensor([[3.0, 3.0, 3.0], [3.0, 3.0, 3.0], [2.0, 4.0, 3.0], [4.5, 2.0, 3.0]])
    action = _action(["keep", "relabel", "mask", "relabel"], delta=[[0, 0], [-0.5, 0.4], [0, 0], [0.9, -1.5]])
    batch = Batch(wave=torch.zeros(4, 10), lengths=torch.full((4,), 10), index=torch.arange(4), sample_rate=16000,
                  labels=LABELS, dims=dims, label_action=action)
    act_bin, val_bin = aux_targets_from_dims(batch.dims)
    assert act_bin.tolist() == [1, 1, 2, 0] and val_bin.tolist() == [1, 1, 0, 2]
    act_new, val_new = aux_targets_from_dims(batch.dimensional_targets())
    # clip 1: valence 2.5 -> low, activation 3.4 -> high; clip 3: valence 5.4 clipped -> high, activation 0.5 -> low
    assert act_new.tolist() == [1, 2, 2, 0] and val_new.tolist() == [1, 0, 0, 2]
    out = _outputs()
    loss, parts = ser_loss(out, LABELS, action, aux_targets=(act_new, val_new), aux_weight=0.5)
    rows = [0, 1, 3]  # dimensional weight 1 for keep and relabel, 0 for the masked clip 2
    exp_act = F.cross_entropy(out["activation"][rows], act_new[rows])
    exp_val = F.cross_entropy(out["valence"][rows], val_new[rows])
    torch.testing.assert_close(parts["activation"], exp_act.detach())
    torch.testing.assert_close(parts["valence"], exp_val.detach())
    torch.testing.assert_close(loss, F.cross_entropy(out["emotion"][[0]], LABELS[[0]]) + 0.5 * (exp_act + exp_val))
    # the relabel is what moved the target: with the unshifted bins the aux loss differs
    _, old = ser_loss(out, LABELS, action, aux_targets=(act_bin, val_bin))
    assert not torch.isclose(old["activation"], parts["activation"])


def test_unknown_aux_targets_are_skipped_and_nan_dims_give_minus_one():
    a, v = aux_targets_from_dims(torch.tensor([[float("nan"), 4.0, 3.0], [2.75, float("nan"), 3.0]]))
    assert a.tolist() == [2, -1] and v.tolist() == [-1, 0]
    out = _outputs(B=2, C=4)
    t_act, t_val = torch.tensor([2, -1]), torch.tensor([-1, -1])
    loss, parts = ser_loss(out, torch.tensor([0, 1]), aux_targets=(t_act, t_val))
    torch.testing.assert_close(parts["activation"], F.cross_entropy(out["activation"][:1], t_act[:1]).detach())
    assert parts["valence"].item() == 0.0 and not math.isnan(loss.item())


def test_unknown_labels_and_shape_errors():
    out = _outputs(aux=False)
    loss, _ = ser_loss(out, torch.tensor([0, -1, 2, 3]))
    torch.testing.assert_close(loss, F.cross_entropy(out["emotion"], torch.tensor([0, -100, 2, 3])))
    with pytest.raises(ValueError, match="lack"):
        ser_loss(out, LABELS, aux_targets=(LABELS, LABELS))
    with pytest.raises(ValueError, match="class_weights"):
        ser_loss(out, LABELS, class_weights=torch.ones(3))
    with pytest.raises(ValueError, match="labels"):
        ser_loss(out, LABELS[:3])


def test_weight_sums_split_batch_adds_up_to_the_whole_batch():
    """Two halves normalised by the whole batch's weight_sums sum to the whole batch's loss."""
    from gpuaug.train.loss import weight_sums

    out = _outputs(B=6)
    labels = torch.tensor([0, 1, 2, 3, 1, 0])
    action = _action(["keep", "mask", "relabel", "keep", "drop", "keep"])
    cw = torch.tensor([0.5, 2.0, 1.0, 3.0])
    aux = (torch.tensor([0, 1, 2, -1, 1, 0]), torch.tensor([2, 2, 1, 0, -1, 0]))
    whole, _ = ser_loss(out, labels, action, cw, aux)
    total = weight_sums(labels, action, cw, aux)
    assert set(total) == {"emotion", "activation", "valence"}
    torch.testing.assert_close(total["emotion"], torch.tensor(0.5 + 3.0 + 0.5))
    halves = []
    for rows in ([0, 1, 2], [3, 4, 5]):
        sub = LabelAction(action.keep[rows], action.loss_weight[rows], action.delta[rows],
                          action.dimensional_weight[rows], [action.action[r] for r in rows])
        loss, _ = ser_loss({k: v[rows] for k, v in out.items()}, labels[rows], sub, cw, tuple(t[rows] for t in aux),
                           weight_sums=total)
        halves.append(loss)
    torch.testing.assert_close(halves[0] + halves[1], whole)
