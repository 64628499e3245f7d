"""The per-batch schedule, and sums over ranks read by name whatever order each rank built its dict in."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lpasrn.config import TrainConfig
from lpasrn.training.optim import build_optimisation
from lpasrn.training.reductions import all_reduce_sums


def test_warm_up_reaches_the_stage_lr_then_cosine_decays_to_zero():
    params = [torch.nn.Parameter(torch.zeros(1))]
    optimizer, scheduler = build_optimisation(params, 1e-3, TrainConfig(warmup_fraction=0.1), total_steps=100)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(1e-4) and max(rates) == pytest.approx(1e-3) and rates.index(max(rates)) == 9
    assert all(a >= b for a, b in zip(rates[9:], rates[10:])) and rates[-1] < 1e-6


def test_outside_ddp_the_sums_are_the_values():
    assert all_reduce_sums({"b": 2, "a": 1.5}, torch.device("cpu")) == {"a": 1.5, "b": 2.0}


def _rank(rank: int, init_file: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    values = {"tracks_right": rank + 1.0, "loss": 10.0 * (rank + 1)}
    ordered = values if rank == 0 else dict(reversed(list(values.items())))  # each rank builds its own order
    results[rank] = all_reduce_sums(ordered, torch.device("cpu"))
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_sum_each_name(tmp_path):
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_rank, args=(str(tmp_path / "init"), results), nprocs=2)
        assert dict(results) == {r: {"loss": 30.0, "tracks_right": 3.0} for r in (0, 1)}
