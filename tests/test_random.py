"""The counter-based RNG: bit-exact SplitMix64, purity and independence of batch layout."""
import numpy as np
import torch

from gpuaug.random import _mix_torch, _uniform_torch, combine, item_keys, mix, normal, stream_id, uniform


def _mix_ref(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = z.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def test_mix_matches_uint64_splitmix():
    """Both implementations (numpy uint64 on plain CPU tensors, torch int64 elsewhere), any shape."""
    x = torch.tensor([0, 1, 2, 12345, -1, -(2**63), 2**63 - 1], dtype=torch.int64)
    x = torch.cat([x, torch.randint(-(2**63), 2**63 - 1, (504,), generator=torch.Generator().manual_seed(0))])
    want = _mix_ref(x.numpy().view(np.uint64))
    for impl in (mix, _mix_torch):
        np.testing.assert_array_equal(impl(x).numpy().view(np.uint64), want)
        assert impl(x.view(-1, 7)[:, 2:5]).shape == (73, 3) and torch.equal(impl(x[3]), impl(x[3:4])[0])
        assert torch.equal(impl(x[5].expand(4)), impl(x[5:6]).expand(4))


def test_uniform_numpy_path_matches_torch_ops():
    """The numpy chain of plain CPU tensors gives the torch-op chain's bits: scalar and tensor
    counters, 0-d keys, broadcasting, negative counters."""
    g = torch.Generator().manual_seed(1)
    keys = torch.randint(-(2**63), 2**63 - 1, (37,), generator=g)
    for key, counter in [(keys, 0), (keys, 7), (keys[:, None], torch.arange(-3, 50)), (keys[5], 12),
                         (keys[5], torch.arange(10)), (keys.view(37, 1), torch.tensor([[-1, 2**40]]))]:
        for stream in (0, 123456789, 0x5BD1E995 ^ 77):
            for dtype in (torch.float64, torch.float32):
                got, want = uniform(key, stream, counter, dtype), _uniform_torch(key, stream, counter, dtype)
                assert got.shape == want.shape and got.dtype == want.dtype and torch.equal(got, want)


def test_known_splitmix_value():
    # SplitMix64 with state 0: the first output is 0xE220A8397B1DCDAF
    assert int(mix(torch.tensor(0)).numpy().astype(np.int64).view(np.uint64)) == 0xE220A8397B1DCDAF


def test_item_keys_pure_and_independent_of_batch_layout():
    a = item_keys(7, 3, torch.tensor([5, 9, 11]))
    b = item_keys(7, 3, torch.tensor([11, 5]))
    assert a[0] == b[1] and a[2] == b[0]
    assert not torch.equal(item_keys(7, 4, torch.tensor([5])), item_keys(7, 3, torch.tensor([5])))
    assert not torch.equal(item_keys(8, 3, torch.tensor([5])), item_keys(7, 3, torch.tensor([5])))


def test_uniform_range_and_moments():
    key = item_keys(0, 0, torch.arange(4))
    u = uniform(key[:, None], stream_id("x"), torch.arange(50000))
    assert float(u.min()) >= 0 and float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 0.01
    z = normal(key[:, None], 3, torch.arange(50000), dtype=torch.float64)
    assert abs(float(z.mean())) < 0.02 and abs(float(z.std()) - 1) < 0.02
    assert bool(torch.isfinite(z).all())


def test_streams_differ():
    key = item_keys(0, 0, torch.arange(1000))
    assert not torch.allclose(uniform(key, 1), uniform(key, 2))
    assert stream_id("a") == stream_id("a") != stream_id("b")
    assert combine(torch.tensor(1), 2) != combine(torch.tensor(2), 1)
