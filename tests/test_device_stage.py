"""DeviceLoader's prefetch safety without a GPU: the tensor walker and the stream protocol.

The CUDA behaviour itself (a lagging consumer, reused memory) is in test_device_stage_cuda.py;
here ``record_stream`` is mocked and the streams are fakes that log what is called when.
"""
from dataclasses import dataclass, field, fields

import pytest
import torch

import gpuaug.data.device_stage as ds
from gpuaug.data.batch import Batch
from gpuaug.data.device_stage import DeviceLoader, iter_tensors, record_stream
from gpuaug.policy.labels import LabelAction
from gpuaug.transforms.pipeline import AugmentResult


@dataclass
class Inner:
    a: torch.Tensor
    rest: list = field(default_factory=list)


def _meta(*shape):
    return torch.empty(*shape, device="meta")


def _batch():
    """A Batch whose 'device' tensors are on the meta device, host tensors on the CPU."""
    shared = _meta(3)
    la = LabelAction(keep=_meta(3), loss_weight=_meta(3), delta=_meta(3, 2), dimensional_weight=_meta(3),
                     action=["keep", "mask", "keep"])
    known = dict(wave=_meta(3, 10), lengths=_meta(3), params={"0": {"snr": torch.zeros(3)}}, tags=["clean"] * 3,
                 labels=la, leaves={}, severity=torch.zeros(3, dtype=torch.int64), study_delta=torch.zeros(3, 2))
    res = AugmentResult(**{f.name: known.get(f.name) for f in fields(AugmentResult)})
    b = Batch(wave=_meta(3, 10), lengths=_meta(3), index=torch.arange(3), sample_rate=16000, labels=shared,
              dims=shared, words=None, augmented=_meta(3), is_copy=_meta(3),
              params={"0": {"gain": _meta(3), "apply": torch.ones(3, dtype=torch.bool)},
                      "nested": [(_meta(1), {"deep": Inner(_meta(2), [_meta(4), "text", 5])})]},
              record=[[{"name": "noise", "snr": 10.0}], [], [res]], tags=["clean"] * 3, label_action=la)
    return b, res, shared


def _expected_meta(b, res, shared):
    la = b.label_action
    nested = b.params["nested"][0]
    return {id(t) for t in [b.wave, b.lengths, shared, b.augmented, b.is_copy, b.params["0"]["gain"], nested[0],
                            nested[1]["deep"].a, nested[1]["deep"].rest[0], la.keep, la.loss_weight, la.delta,
                            la.dimensional_weight, res.wave, res.lengths]}


def test_iter_tensors_walks_every_container_once():
    b, res, shared = _batch()
    seen = list(iter_tensors(b))
    assert len(seen) == len({id(t) for t in seen})  # shared tensors and objects visited once
    meta = {id(t) for t in seen if t.device.type == "meta"}
    assert meta == _expected_meta(b, res, shared)
    cpu = {id(t) for t in seen if t.device.type == "cpu"}
    assert cpu == {id(t) for t in [b.index, b.params["0"]["apply"], res.params["0"]["snr"], res.severity,
                                   res.study_delta]}
    assert list(iter_tensors(["a", 1, None, {"k": "v"}])) == []
    cyc: list = []
    cyc.append(cyc)
    assert list(iter_tensors(cyc)) == []  # cycles end


def test_record_stream_records_only_device_tensors(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.Tensor, "record_stream", lambda self, stream: calls.append((id(self), stream)))
    b, res, shared = _batch()
    stream = object()
    recorded = record_stream(b, stream, device_type="meta")
    assert {id(t) for t in recorded} == _expected_meta(b, res, shared)
    assert sorted(c[0] for c in calls) == sorted(id(t) for t in recorded)  # each once
    assert all(c[1] is stream for c in calls)
    calls.clear()
    assert record_stream(b, stream) == [] and calls == []  # no CUDA tensors here


class FakeStream:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def wait_stream(self, other):
        self.log.append(("wait", self.name, other.name))


class _Ctx:
    def __init__(self, state, stream):
        self.state, self.stream = state, stream

    def __enter__(self):
        self.prev, self.state["current"] = self.state["current"], self.stream

    def __exit__(self, *exc):
        self.state["current"] = self.prev


def test_prefetch_protocol(monkeypatch):
    """Order: prefetch k+1 on the side stream before k is handed over; the consumer waits for
    the side stream and records its stream on k right before k is handed over, after it used
    k - 1; the side stream first waits for the consumer."""
    log = []
    consumer, side = FakeStream("consumer", log), FakeStream("side", log)
    state = {"current": consumer}
    monkeypatch.setattr(torch.cuda, "Stream", lambda device=None: side)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: state["current"])
    monkeypatch.setattr(torch.cuda, "stream", lambda s: _Ctx(state, s))
    monkeypatch.setattr(ds, "record_stream", lambda obj, stream: log.append(("record", obj, stream.name)))

    def finish(self, batch):
        log.append(("finish", batch, state["current"].name))
        return batch

    monkeypatch.setattr(DeviceLoader, "_finish", finish)
    dl = DeviceLoader([0, 1, 2], collate=None, device="cuda")
    assert dl.prefetch
    got = []
    for b in dl:
        log.append(("use", b))
        got.append(b)
    assert got == [0, 1, 2]
    assert log == [
        ("wait", "side", "consumer"),
        ("finish", 0, "side"), ("wait", "consumer", "side"), ("record", 0, "consumer"),
        ("finish", 1, "side"), ("use", 0), ("wait", "consumer", "side"), ("record", 1, "consumer"),
        ("finish", 2, "side"), ("use", 1), ("wait", "consumer", "side"), ("record", 2, "consumer"),
        ("use", 2),
    ]


def test_no_prefetch_on_cpu_and_empty_loader(monkeypatch):
    monkeypatch.setattr(DeviceLoader, "_finish", lambda self, b: b * 10)
    assert list(DeviceLoader([1, 2], collate=None, device="cpu")) == [10, 20]
    assert not DeviceLoader([], collate=None, device="cpu").prefetch


def test_pinned_leaves_device_and_foreign_batches_alone():
    b = Batch(wave=torch.zeros(2, 4, device="meta"), lengths=torch.tensor([4, 3]), index=torch.arange(2),
              sample_rate=16000)
    assert ds._pinned(b) is b  # audio already on a device: nothing to pin
    assert ds._pinned([1, 2]) == [1, 2]  # not a Batch


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinning needs CUDA")
def test_pinned_pins_the_audio_once():
    b = Batch(wave=torch.zeros(2, 4), lengths=torch.tensor([4, 3]), index=torch.arange(2), sample_rate=16000,
              augmented=torch.tensor([True, False]))
    p = ds._pinned(b)
    assert p.wave.is_pinned() and not b.wave.is_pinned() and torch.equal(p.wave, b.wave)
    assert p.lengths is b.lengths
    assert ds._pinned(p) is p
