"""Plates rendered on the fly: deterministic per (seed, index), fresh every epoch, disjoint across ranks."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from lpasrn.data.charset import layout_problem
from lpasrn.data.synthetic_stream import FreshPlateSampler, SyntheticPlateDataset


def test_a_sample_depends_only_on_seed_and_index():
    first, again = SyntheticPlateDataset(4, (16, 48), 2, seed=7), SyntheticPlateDataset(4, (16, 48), 2, seed=7)
    a, b = first[3], again[3]
    assert a["text"] == b["text"] and torch.equal(a["lr"], b["lr"]) and torch.equal(a["hr"], b["hr"])
    assert a["lr"].shape == (3, 16, 48) and a["hr"].shape == (3, 32, 96) and a["index"] == 3
    assert layout_problem(a["text"], a["layout"]) is None
    assert not torch.equal(SyntheticPlateDataset(4, (16, 48), 2, seed=8)[3]["hr"], a["hr"])


def test_every_epoch_draws_new_plates_and_ranks_share_them_without_overlap():
    ranks = [FreshPlateSampler(10, world_size=2, rank=r) for r in range(2)]
    seen = []
    for epoch in range(3):
        for sampler in ranks:
            sampler.set_epoch(epoch)
        shares = [list(sampler) for sampler in ranks]
        assert sorted(shares[0] + shares[1]) == list(range(10 * epoch, 10 * epoch + 10))
        assert [len(sampler) for sampler in ranks] == [5, 5]
        seen += shares[0] + shares[1]
    assert len(seen) == len(set(seen)) == 30


def test_loader_workers_render_the_same_batches_as_the_main_process():
    dataset, sampler = SyntheticPlateDataset(6, (16, 48), 2, seed=3), FreshPlateSampler(6)
    sampler.set_epoch(2)
    batches = [
        next(iter(DataLoader(dataset, sampler=sampler, batch_size=6, num_workers=workers))) for workers in (0, 2)
    ]
    assert batches[0]["text"] == batches[1]["text"] and torch.equal(batches[0]["hr"], batches[1]["hr"])
    assert batches[0]["index"].tolist() == list(range(12, 18))


def test_the_stream_renders_the_configured_style():
    standard = SyntheticPlateDataset(2, (16, 48), 2, seed=7)[1]
    varied = SyntheticPlateDataset(2, (16, 48), 2, seed=7, style="varied")[1]
    assert standard["text"] == varied["text"]  # the plan is the style's only shared draw
    assert not torch.equal(standard["hr"], varied["hr"])
