"""The Table 1 CNN-GRU: config, grid, valid-length tracking, padding invariance, and that it learns."""
from __future__ import annotations

import json
import time

import pytest
import torch

from gpuaug.train.model import CNNGRU, CNNGRUConfig, DEFAULT_CONFIG, TABLE1_GRID, grid_configs


def _feats(lengths, n_mels=40, seed=0):
    """Zero-padded random features (B, F, n_mels) and their lengths."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(len(lengths), max(lengths), n_mels)
    for i, n in enumerate(lengths):
        x[i, :n] = torch.randn(n, n_mels, generator=g)
    return x, torch.tensor(lengths)


def test_config_validation_and_json_roundtrip():
    cfg = CNNGRUConfig(n_classes=6, channels=128, pool=4, gru_layers=3, gru_units=64, dense_layers=2,
                       aux_heads=True)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert CNNGRUConfig.from_dict(d) == cfg
    with pytest.raises(ValueError, match="unknown CNNGRUConfig fields"):
        CNNGRUConfig.from_dict({**d, "chanels": 64})
    for bad, match in [({"channels": 0}, "channels must be >= 1"), ({"n_classes": 1}, "n_classes must be >= 2"),
                       ({"pool": 2.0}, "pool must be an int"), ({"dropout": 1.0}, "dropout"),
                       ({"gru_layers": True}, "gru_layers must be an int"), ({"aux_heads": 1}, "aux_heads")]:
        with pytest.raises(ValueError, match=match):
            CNNGRUConfig(**bad)


def test_table1_grid_has_72_distinct_configs():
    configs = grid_configs(DEFAULT_CONFIG)
    assert len(configs) == 72 == len(set(configs))
    for key, values in TABLE1_GRID.items():
        assert {getattr(c, key) for c in configs} == set(values)
    assert all(c.conv_layers == 5 and c.kernel_width == 2 and c.n_mels == 40 for c in configs)
    assert grid_configs(DEFAULT_CONFIG, {"pool": (2, 4)}) == [DEFAULT_CONFIG, CNNGRUConfig(pool=4)]
    with pytest.raises(ValueError, match="not CNNGRUConfig fields"):
        grid_configs(DEFAULT_CONFIG, {"width": (1,)})


def test_outputs_shapes_heads_and_no_batchnorm():
    model = CNNGRU(CNNGRUConfig(n_classes=5, aux_heads=True)).eval()
    x, L = _feats([50, 20, 3])
    out = model(x, L)
    assert set(out) == {"emotion", "activation", "valence"}
    assert out["emotion"].shape == (3, 5) and out["activation"].shape == (3, 3) == out["valence"].shape
    assert model.embed(x, L).shape == (3, DEFAULT_CONFIG.gru_units)
    assert set(CNNGRU(DEFAULT_CONFIG)(x, L)) == {"emotion"}
    assert not any(isinstance(m, nn_norm) for m in model.modules() for nn_norm in
                   (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.LayerNorm))
    out["emotion"].sum().backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if not n.startswith(("activation", "valence")))


def test_valid_length_tracking():
    model = CNNGRU(CNNGRUConfig(conv_layers=5, kernel_width=2, pool=4))
    # 5 valid convs of width 2 remove 5 frames, then floor(/4); clamped >= 1 at every stage
    L = torch.tensor([100, 25, 9, 8, 6, 1])
    assert model.output_lengths(L).tolist() == [23, 5, 1, 1, 1, 1]
    assert CNNGRUConfig(pool=4).min_frames == 9
    model = CNNGRU(CNNGRUConfig(kernel_width=3, conv_layers=2, pool=2))
    assert model.output_lengths(torch.tensor([10, 5])).tolist() == [3, 1]


@pytest.mark.parametrize("cfg", [DEFAULT_CONFIG, CNNGRUConfig(channels=128, pool=4, gru_layers=3, gru_units=64,
                                                             dense_layers=3, aux_heads=True, dropout=0.5)])
def test_clip_alone_equals_clip_in_padded_batch(cfg):
    torch.manual_seed(0)
    model = CNNGRU(cfg).eval()
    x, L = _feats([300, 61, 8, 2], seed=1)  # 8 and 2 frames: shorter than the receptive field
    with torch.no_grad():
        batched, emb = model(x, L), model.embed(x, L)
        for i, n in enumerate(L.tolist()):
            alone = model(x[i:i + 1, :n], L[i:i + 1])
            for k in batched:
                torch.testing.assert_close(alone[k][0], batched[k][i], atol=1e-5, rtol=0)
            torch.testing.assert_close(model.embed(x[i:i + 1, :n], L[i:i + 1])[0], emb[i], atol=1e-5, rtol=0)
        # garbage in the padded frames of the features changes nothing either
        dirty = x.clone()
        dirty[1, 61:] = 5.0
        torch.testing.assert_close(model(dirty, L)["emotion"], batched["emotion"], atol=1e-6, rtol=0)
        # but valid frames matter (the test can fail)
        changed = x.clone()
        changed[1, 50:61] += 3.0
        assert (model.embed(changed, L)[1] - emb[1]).abs().max() > 1e-3


def test_every_table1_config_builds_and_is_padding_invariant():
    x, L = _feats([40, 12], seed=2)
    for cfg in grid_configs(DEFAULT_CONFIG):
        model = CNNGRU(cfg).eval()
        with torch.no_grad():
            a = model(x, L)["emotion"][1]
            b = model(x[1:, :12], L[1:])["emotion"][0]
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0, msg=lambda m: f"{cfg}: {m}")


def test_model_learns_the_synthetic_corpus_well_above_chance():
    """Features -> normaliser -> CNN-GRU -> RMSprop on 96 synthetic clips of 1.5-3 s."""
    from gpuaug.data.datasets import SyntheticSERDataset
    from gpuaug.data.padding import pad_batch
    from gpuaug.train.features import LogMel, Normalizer
    from gpuaug.train.loss import class_weights, ser_loss
    from gpuaug.train.metrics import uar

    start = time.perf_counter()
    torch.manual_seed(0)
    ds = SyntheticSERDataset(96, min_s=1.5, max_s=3.0)
    items = [ds[i] for i in range(len(ds))]
    logmel = LogMel(ds.sample_rate)
    raw = []
    for s in range(0, len(items), 16):
        wave, lengths = pad_batch([it["wave"] for it in items[s:s + 16]])
        raw.append((*logmel(wave, lengths), torch.tensor([it["label"] for it in items[s:s + 16]])))
    norm = Normalizer().fit([(f, fl) for f, fl, _ in raw])
    batches = [(norm(f, fl), fl, y) for f, fl, y in raw]
    labels = torch.cat([y for *_, y in batches])
    weights = class_weights(labels, 4)
    model = CNNGRU(DEFAULT_CONFIG)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)

    def train_uar():
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(f, fl)["emotion"].argmax(1) for f, fl, _ in batches])
        model.train()
        return uar(labels, pred, 4)

    before = train_uar()
    for _ in range(5):
        for f, fl, y in batches:
            loss, _ = ser_loss(model(f, fl), y, class_weights=weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
    after = train_uar()
    assert after > 2 * 0.25, f"train UAR {after:.3f} (before training {before:.3f}); chance is 0.25"
    assert after > before
    assert time.perf_counter() - start < 60


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_model_and_loss_on_cuda_match_cpu():
    from gpuaug.train.loss import ser_loss

    torch.manual_seed(0)
    cfg = CNNGRUConfig(aux_heads=True)
    model = CNNGRU(cfg).eval()
    x, L = _feats([120, 30, 4], seed=3)
    with torch.no_grad():
        cpu = model(x, L)
        gpu = model.cuda()(x.cuda(), L.cuda())
    for k in cpu:
        assert gpu[k].device.type == "cuda"
        torch.testing.assert_close(gpu[k].cpu(), cpu[k], atol=1e-4, rtol=0)
    labels = torch.tensor([0, 1, 2])
    aux = (torch.tensor([0, -1, 2]), torch.tensor([1, 1, -1]))
    loss_cpu, _ = ser_loss(cpu, labels, aux_targets=aux)
    loss_gpu, _ = ser_loss(gpu, labels.cuda(), aux_targets=tuple(t.cuda() for t in aux))
    torch.testing.assert_close(loss_gpu.cpu(), loss_cpu, atol=1e-4, rtol=0)
