"""HardExampleMiner weights and the curriculum sampler's DDP shares."""

from __future__ import annotations

import torch

from lpasrn.data.hard_mining import CurriculumSampler, HardExampleMiner


def test_miner_weights_follow_the_difficulty_formula():
    miner = HardExampleMiner(4, difficulty_alpha=2.0, reweight_interval=2, momentum=0.5, eps=0.1)
    miner.update(torch.tensor([0, 1, 2, 3]), torch.tensor([1.0, 0.0, 1.0, 0.0]))
    miner.end_epoch()
    assert torch.equal(miner.accuracy, torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64))
    assert not miner.maybe_reweight(epoch=1) and torch.equal(miner.weights, torch.ones(4, dtype=torch.float64))
    miner.update(torch.tensor([0, 1]), torch.tensor([0.0, 1.0]))
    miner.end_epoch()
    assert torch.allclose(miner.accuracy, torch.tensor([0.5, 0.5, 1.0, 0.0], dtype=torch.float64))  # EMA
    assert miner.maybe_reweight(epoch=2)
    expected = (1 - miner.accuracy + 0.1) ** 2
    assert torch.allclose(miner.weights, expected)
    assert miner.weights[3] > miner.weights[0] > miner.weights[2]
    stats = miner.stats()
    assert stats["hard_fraction"] == 0.25 and stats["weight_max_over_min"] > 1


def test_miner_state_round_trips():
    miner = HardExampleMiner(3, reweight_interval=1)
    miner.update(torch.tensor([2]), torch.tensor([True]))
    miner.end_epoch()
    miner.maybe_reweight(1)
    other = HardExampleMiner(3)
    other.load_state_dict(miner.state_dict())
    assert torch.equal(other.weights, miner.weights) and torch.equal(other.seen, miner.seen)


def test_curriculum_moves_from_uniform_to_hard_weights():
    sampler = CurriculumSampler(4, total_epochs=5)
    sampler.set_weights(torch.tensor([1.0, 1.0, 1.0, 97.0]))
    sampler.set_epoch(0)
    assert torch.allclose(sampler.probabilities(), torch.full((4,), 0.25, dtype=torch.float64))
    sampler.set_epoch(2)
    assert torch.allclose(sampler.probabilities()[3], torch.tensor(0.5 * 0.25 + 0.5 * 0.97, dtype=torch.float64))
    sampler.set_epoch(4)
    assert torch.allclose(sampler.probabilities()[3], torch.tensor(0.97, dtype=torch.float64))
    counts = torch.bincount(torch.tensor(list(CurriculumSampler(4, 1, seed=1).__iter__())), minlength=4)
    assert counts.sum() == 4


def test_ddp_shares_are_disjoint_equal_and_complete_for_world_size_2():
    weights = torch.linspace(1, 10, 11)
    ranks = [CurriculumSampler(11, total_epochs=3, num_replicas=2, rank=r, seed=7) for r in range(2)]
    for sampler in ranks:
        sampler.set_weights(weights)
        sampler.set_epoch(2)
    shares = [list(sampler) for sampler in ranks]
    draw = ranks[0].epoch_draw()
    assert torch.equal(draw, ranks[1].epoch_draw()), "every rank makes the same draw"
    assert len(shares[0]) == len(shares[1]) == 6 == len(ranks[0])
    interleaved = [index for pair in zip(*shares) for index in pair]
    assert interleaved == draw.tolist(), "rank shares are disjoint positions that together are the whole draw"
    ranks[0].set_epoch(1)
    assert list(ranks[0]) != shares[0], "a new epoch draws anew"
