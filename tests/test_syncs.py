"""Host syncs per pipeline call: at most 2 (the input NaN scan and one deferred read).

On the CPU the device is stood in for by :class:`gpuaug.sync_count.DeviceResident` tensors (the
audio and the banks' audio): a new ``.item()``, ``bool(t)``, ``.tolist()``, ``nonzero``,
boolean-mask index or device -> host copy of device data on the hot path fails these tests.
On a GPU the same calls run under ``torch.cuda.set_sync_debug_mode``.
"""
from __future__ import annotations

import collections

import pytest
import torch

from gpuaug._sync import check_later, deferred_reads, host_of, mirrored, read_later, take_rows, upload
from gpuaug.sync_count import STAND_IN, DeviceResident, count_syncs, mark_device
from gpuaug.data import pad_batch
from gpuaug.data.synthetic import synthetic_insert_bank, synthetic_noise_bank, synthetic_rir_bank, synthetic_speech
from gpuaug.presets import build_preset
from gpuaug.transforms import (
    VTLN, AddNoise, DropSegments, Fade, Gain, InsertClip, McAdams, ModulationSmoothing, Pipeline, PitchShift, Reverb,
    Speed, SpeedSegment,
)

#: The issue's target: syncs per pipeline call on CUDA.
MAX_SYNCS = 2


def _banks():
    noise, rir, insert = synthetic_noise_bank(), synthetic_rir_bank(), synthetic_insert_bank()
    return noise, rir, insert


def _full(noise, rir, insert):
    """Every transform with a device path, each on every clip (the benchmarks' "full" + insert)."""
    return Pipeline([McAdams(), PitchShift(), SpeedSegment(), Speed(), DropSegments(), Reverb(rir), AddNoise(noise),
                     Fade(), Gain(), InsertClip(insert), VTLN(), ModulationSmoothing(min_alpha=0.1, max_alpha=0.2)],
                    sample_rate=16000)


def _pipelines(noise, rir, insert):
    pipes = {name: build_preset(name, noise=noise, rir=rir, insert=insert) for name in
             ("retaining", "all_noises", "seed004:pitch", "seed004:white_noise", "mcadams", "vtln", "mss")}
    pipes["full"] = _full(noise, rir, insert)
    half = Pipeline([AddNoise(noise, p=0.5), Reverb(rir, p=0.5), SpeedSegment(p=0.5), Speed(p=0.5)])  # subsets
    pipes["half"] = half
    return pipes


@pytest.fixture(scope="module")
def batch():
    waves = synthetic_speech(4, sample_rate=16000, seed=3, min_s=0.8, max_s=1.2)
    waves = [w if isinstance(w, torch.Tensor) else w.wave for w in waves]
    return pad_batch(waves)


@pytest.fixture(scope="module")
def stand_in_banks():
    noise, rir, insert = _banks()
    for b in (noise, rir, insert):
        b.audio = mark_device(b.audio)  # the banks' audio lives on the device
    return noise, rir, insert


def _call(pipe, wave, lengths, seed=1):
    with count_syncs() as c:
        out = pipe(mark_device(wave), lengths, seed=seed)
        out.record  # records are built from host copies
    return out, c


@pytest.mark.parametrize("name", ["retaining", "all_noises", "seed004:pitch", "seed004:white_noise", "mcadams", "vtln", "mss", "full", "half"])
def test_at_most_two_syncs_per_call(name, batch, stand_in_banks):
    wave, lengths = batch
    pipe = _pipelines(*stand_in_banks)[name]
    _call(pipe, wave, lengths)  # compile / warm up
    out, c = _call(pipe, wave, lengths)
    sites = collections.Counter(c.sites)
    assert c.count <= MAX_SYNCS, f"{name}: {c.count} host syncs per call: {dict(sites)}"
    assert not c.mixed, f"{name}: host and device tensors mixed (an error on CUDA): {c.mixed}"
    assert isinstance(out.wave, DeviceResident)  # the audio never left the device
    assert out.lengths.device.type == "cpu" and not isinstance(host_of(out.lengths), DeviceResident)


def test_stand_in_matches_plain_cpu(batch, stand_in_banks):
    """Running on the stand-in device changes nothing: same audio, lengths and records."""
    wave, lengths = batch
    pipe_dev = _pipelines(*stand_in_banks)["full"]
    pipe_cpu = _pipelines(*_banks())["full"]
    a, _ = _call(pipe_dev, wave, lengths)
    b = pipe_cpu(wave, lengths, seed=1)
    assert torch.equal(a.wave.as_subclass(torch.Tensor), b.wave)
    assert torch.equal(host_of(a.lengths), b.lengths)
    assert a.record == b.record


def test_device_lengths_cost_no_extra_sync(batch, stand_in_banks):
    """Device lengths without a host mirror are read back with the NaN scan, in one copy."""
    wave, lengths = batch
    pipe = _pipelines(*stand_in_banks)["retaining"]
    _call(pipe, wave, lengths)
    with count_syncs() as c:
        pipe(mark_device(wave), mark_device(lengths), seed=1)  # device lengths without a mirror
    _, base = _call(pipe, wave, lengths)
    assert c.count == base.count


# ---- the counter and the helpers themselves (each must be able to fail) ---------------------
def test_counter_sees_host_reads():
    d = mark_device(torch.arange(6.0))
    with count_syncs() as c:
        d.sum().item()
        bool((d > 2).any())
        d.tolist()
        d[d > 2]
        d.nonzero()
        d.cpu()
        int(d.max())
        torch.zeros(6)[:] = d  # device -> host write
        d + 1, d[torch.tensor([0, 2])], d.repeat_interleave(2)  # not syncs
    assert c.count == 8, c.sites


def test_counter_sees_mixed_devices():
    d = mark_device(torch.ones(3))
    with count_syncs() as c:
        d + torch.ones(3)  # CUDA: "Expected all tensors to be on the same device"
        torch.where(torch.tensor([True, False, True]), d, 0.0)
        d + torch.tensor(2.0), d[torch.tensor([0, 1])]  # a 0-dim host scalar and an index are fine
    assert len(c.mixed) == 2, c.mixed


def test_counter_marks_device_factories():
    with count_syncs() as c:
        z = torch.zeros(3, device=STAND_IN)
        int(z.sum())
        h = torch.zeros(3)
        int(h.sum())
    assert isinstance(z, DeviceResident) and not isinstance(h, DeviceResident)
    assert c.count == 1


def test_upload_and_mirrors():
    hosts = [torch.arange(5), torch.tensor([True, False]), torch.rand(2, 3, dtype=torch.float64), torch.zeros(0)]
    with count_syncs() as c:
        devs = upload(hosts, STAND_IN)
        for h, d in zip(hosts, devs):
            assert torch.equal(d.as_subclass(torch.Tensor), h) and d.dtype == h.dtype
            assert host_of(d) is h
    assert c.count == 0
    d = mirrored(torch.arange(4), STAND_IN)
    d.add_(1)  # an in-place change invalidates the mirror: host_of reads the device again
    with count_syncs() as c:
        assert host_of(d).tolist() == [1, 2, 3, 4]
    assert c.count == 1


def test_take_rows_keeps_the_mirror():
    d = mirrored(torch.tensor([5, 6, 7, 8]), STAND_IN)
    idx = torch.tensor([3, 0])
    with count_syncs() as c:
        r = take_rows(d, idx)
        assert host_of(r).tolist() == [8, 5]
    assert c.count == 0


def test_deferred_reads_one_sync_and_errors():
    d = mirrored(torch.arange(4), STAND_IN).as_subclass(DeviceResident) * 1  # device-only values
    got = []
    with count_syncs() as c, deferred_reads() as deferred:
        check_later(d >= 0, lambda ok: "negative")
        read_later(d * 2, got.append)
        read_later(d + 1, got.append)
        deferred.flush()
    assert c.count == 1 and [g.tolist() for g in got] == [[0, 2, 4, 6], [1, 2, 3, 4]]
    with deferred_reads() as deferred:
        check_later(d > 0, lambda ok: f"clips {(~ok).nonzero().flatten().tolist()} are bad")
        with pytest.raises(ValueError, match=r"clips \[0\] are bad"):
            deferred.flush()
    with pytest.raises(ValueError, match="bad now"):  # outside a block: at once
        check_later(d > 0, lambda ok: "bad now")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["retaining", "full"])
def test_cuda_sync_debug_mode(name, batch):
    noise, rir, insert = (b.to("cuda") for b in _banks())
    pipe = _pipelines(noise, rir, insert)[name]
    wave, lengths = batch
    wave = wave.cuda()
    pipe(wave, lengths, seed=1)
    with count_syncs("cuda") as c:
        pipe(wave, lengths, seed=1)
    assert c.count <= MAX_SYNCS, c.sites
    torch.cuda.set_sync_debug_mode("error")  # any sync but gpuaug._sync.to_host raises
    try:
        pipe(wave, lengths, seed=1).record
    finally:
        torch.cuda.set_sync_debug_mode(0)


def test_device_stage_at_most_two_syncs(stand_in_banks):
    """collate (workers: CPU) -> Batch.to(device) -> AugmentCollate.apply: the device stage's
    own work adds no sync to the pipeline's."""
    from gpuaug.data import AugmentCollate
    from gpuaug.data.datasets import SyntheticSERDataset

    noise, rir, insert = stand_in_banks
    pipe = build_preset("retaining", noise=noise, rir=rir, insert=insert)
    ds = SyntheticSERDataset(8, sample_rate=16000, seed=0)
    collate = AugmentCollate(pipe, ratio=0.5, seed=0, dataset_size=len(ds))
    pending = collate.collate([ds[i] for i in range(8)])
    collate.apply(pending.to(STAND_IN))  # warm up
    with count_syncs() as c:
        out = collate.apply(pending.to(STAND_IN))
        out.record, out.tags
    assert c.count <= MAX_SYNCS, collections.Counter(c.sites)
    assert isinstance(out.wave, DeviceResident) and isinstance(out.label_action.keep, DeviceResident)
