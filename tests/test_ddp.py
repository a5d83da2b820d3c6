"""DDP: two CPU ranks (gloo) with DistributedSampler get distinct, reproducible augmentation."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, DistributedSampler

N = 16


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dataset():
    from test_collate import Toy

    return Toy(N)


def _pipeline():
    from gpuaug import Pipeline
    from gpuaug.data.synthetic import synthetic_noise_bank
    from gpuaug.transforms import AddNoise, Fade

    return Pipeline([AddNoise(synthetic_noise_bank(seconds=1)), Fade(p=0.5)])


def _checksums(loader) -> dict:
    return {int(i): (round(float(b.wave[k, : b.lengths[k]].double().sum()), 6), b.record[k][0]["snr_db"] if b.record[k] else None)
            for b in loader for k, i in enumerate(b.index)}


def _worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from gpuaug.data.collate import AugmentCollate

    ds = _dataset()
    collate = AugmentCollate(_pipeline(), ratio=1.0, seed=7)
    sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=0)
    loader = DataLoader(ds, batch_size=3, sampler=sampler, collate_fn=collate)
    result = {}
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        collate.set_epoch(epoch)
        result[epoch] = _checksums(loader)
    gathered = [None] * world
    dist.all_gather_object(gathered, result)
    if rank == 0:
        torch.save(gathered, os.path.join(out_dir, "ranks.pt"))
    dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
def test_two_gloo_ranks(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = torch.load(tmp_path / "ranks.pt", weights_only=False)
    from gpuaug.data.collate import AugmentCollate

    single = AugmentCollate(_pipeline(), ratio=1.0, seed=7)
    ds = _dataset()
    for epoch in (0, 1):
        a, b = ranks[0][epoch], ranks[1][epoch]
        assert not set(a) & set(b) and set(a) | set(b) == set(range(N))  # distinct items per rank
        single.set_epoch(epoch)
        ref = _checksums(DataLoader(ds, batch_size=5, collate_fn=single))
        for i, v in {**a, **b}.items():  # same augmentation as one process: reproducible
            assert v[1] == ref[i][1]
            assert abs(v[0] - ref[i][0]) < 1e-3
    snrs = [v[1] for v in ranks[0][0].values()] + [v[1] for v in ranks[1][0].values()]
    assert len(set(snrs)) > N // 2  # parameters differ between items and ranks
