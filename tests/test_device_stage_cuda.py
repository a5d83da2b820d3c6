"""DeviceLoader prefetch on a real GPU: a lagging consumer sees exactly the unprefetched batches.

The consumer stream is made to lag (``torch.cuda._sleep``) before it reads each batch, then
the batch is dropped and garbage is allocated, so that without ``record_stream`` the next
prefetch (side stream, running ahead) would reuse and overwrite the memory the consumer's
queued reads still need. Prefetched and unprefetched batches must agree bit for bit. Skipped
without CUDA (the protocol itself is tested on the CPU in test_device_stage.py).
"""
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

B, N_BATCHES, SECONDS = 6, 8, 1.5
#: GPU clock cycles the consumer sleeps before reading each batch (~10 ms on a 2 GHz GPU).
LAG_CYCLES = 20_000_000


def _collate():
    from gpuaug.data import AugmentCollate
    from gpuaug.data.synthetic import synthetic_noise_bank, synthetic_rir_bank
    from gpuaug.transforms import AddNoise, Fade, Gain, Pipeline, Reverb, SpeedSegment

    noise, rir = synthetic_noise_bank(), synthetic_rir_bank()
    noise.to("cuda")
    rir.to("cuda")
    pipe = Pipeline([AddNoise(noise, snr_db_choices=(0.0, 10.0)), Reverb(rir, p=0.5), SpeedSegment(p=0.5),
                     Fade(p=0.5), Gain(p=0.5)], sample_rate=16000)
    return AugmentCollate(pipe, ratio=0.75, seed=3, device="cuda")


def _items():
    from gpuaug.data.synthetic import synthetic_speech

    # equal lengths: every batch has the same shape, so freed blocks are reused by the next batch
    return [{"wave": it.wave, "sample_rate": 16000, "index": it.index, "label": it.label}
            for it in synthetic_speech(B * N_BATCHES, min_s=SECONDS, max_s=SECONDS)]


def _snapshot(batch) -> dict:
    """Device copies (on the consumer stream) of every tensor a training step reads."""
    la = batch.label_action
    out = {"wave": batch.wave, "lengths": batch.lengths, "labels": batch.labels, "augmented": batch.augmented,
           "is_copy": batch.is_copy, "keep": la.keep, "loss_weight": la.loss_weight, "delta": la.delta,
           "dimensional_weight": la.dimensional_weight}
    snap = {k: v.clone() for k, v in out.items() if isinstance(v, torch.Tensor)}
    snap["_host"] = (batch.tags, la.action, batch.record)
    return snap


def _consume(loader, lag: bool, consumer_stream=None) -> list[dict]:
    snaps = []
    ctx = torch.cuda.stream(consumer_stream) if consumer_stream is not None else torch.cuda.stream(None)
    with ctx:
        for batch in loader:
            if lag:
                torch.cuda._sleep(LAG_CYCLES)  # the consumer's reads below run ~10 ms later
            snaps.append(_snapshot(batch))
            del batch  # freed now: its blocks go back to the pool of the stream that allocated them
            junk = torch.full((B, int(SECONDS * 16000)), float("nan"), device="cuda")  # garbage in between
            del junk
    torch.cuda.synchronize()
    return [{k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in s.items()} for s in snaps]


def _assert_same(got, want):
    assert len(got) == len(want) == N_BATCHES
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.keys() == w.keys()
        for k in w:
            if isinstance(w[k], torch.Tensor):
                assert g[k].dtype == w[k].dtype and torch.equal(g[k], w[k]), f"batch {i}: {k} differs"
            else:
                assert g[k] == w[k], f"batch {i}: {k} differs"


def _pending_batches(collate, items):
    """What DataLoader workers hand over: CPU-only, ``pending`` batches."""
    return [collate.collate(items[i * B:(i + 1) * B]) for i in range(N_BATCHES)]


@pytest.mark.parametrize("consumer", ["default", "side"])
def test_prefetch_matches_unprefetched_with_lagging_consumer(consumer):
    from gpuaug.data import DeviceLoader

    collate, items = _collate(), _items()
    want = _consume(DeviceLoader(_pending_batches(collate, items), collate, "cuda", prefetch=False), lag=False)
    assert any(bool(w["augmented"].any()) for w in want)
    stream = torch.cuda.Stream() if consumer == "side" else None
    for _ in range(2):  # the second epoch runs on a warm caching allocator
        got = _consume(DeviceLoader(_pending_batches(collate, items), collate, "cuda"), lag=True,
                       consumer_stream=stream)
        _assert_same(got, want)


def test_prefetch_with_in_process_collate():
    """num_workers=0: the collate augments inside the loader's ``next``, on the side stream."""
    from torch.utils.data import DataLoader

    from gpuaug.data import DeviceLoader

    collate, items = _collate(), _items()
    want = _consume(DeviceLoader(_pending_batches(collate, items), collate, "cuda", prefetch=False), lag=False)
    got = _consume(DeviceLoader(DataLoader(items, batch_size=B, collate_fn=collate), collate, "cuda"), lag=True)
    _assert_same(got, want)


def test_batches_are_on_the_device_and_pinned_copy_is_used():
    from gpuaug.data import DeviceLoader

    collate, items = _collate(), _items()
    pending = _pending_batches(collate, items)
    for batch in DeviceLoader(pending, collate, "cuda"):
        for name in ("wave", "lengths", "augmented", "is_copy", "labels"):
            assert getattr(batch, name).device.type == "cuda", name
        assert not batch.pending
    assert not pending[0].wave.is_pinned()  # the loader's own batches are left as they were
