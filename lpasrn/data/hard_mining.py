"""Hard-example mining for stage 4: per-sample difficulty and a curriculum sampler that is correct under DDP.

`HardExampleMiner` keeps an EMA of each sample's word accuracy and turns it into sampling weights
`(1 - acc + eps) ** difficulty_alpha`, refreshed every `reweight_interval` epochs. `CurriculumSampler` blends
from uniform sampling to those weights over the stage. A plain `WeightedRandomSampler` is wrong under DDP:
every rank would draw its own sample set. Here all ranks make the same weighted draw per epoch (seed + epoch)
and each takes a disjoint strided share of it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


class HardExampleMiner:
    def __init__(
        self,
        num_samples: int,
        difficulty_alpha: float = 2.0,
        reweight_interval: int = 5,
        momentum: float = 0.7,
        eps: float = 0.05,
    ):
        self.difficulty_alpha, self.reweight_interval = difficulty_alpha, reweight_interval
        self.momentum, self.eps = momentum, eps
        self.accuracy = torch.zeros(num_samples, dtype=torch.float64)
        self.seen = torch.zeros(num_samples, dtype=torch.bool)
        self.weights = torch.ones(num_samples, dtype=torch.float64)
        self._hits = torch.zeros(num_samples, dtype=torch.float64)
        self._counts = torch.zeros(num_samples, dtype=torch.float64)

    @property
    def num_samples(self) -> int:
        return self.accuracy.numel()

    def update(self, indices: torch.Tensor, correct: torch.Tensor) -> None:
        """Record this rank's results for a batch (sample indices, exact-match flags)."""
        indices = indices.long().cpu()
        self._hits.index_add_(0, indices, correct.double().cpu())
        self._counts.index_add_(0, indices, torch.ones_like(indices, dtype=torch.float64))

    def end_epoch(self) -> None:
        """Fold the epoch's results into the EMA, summed over DDP ranks first so every rank agrees."""
        if dist.is_available() and dist.is_initialized():
            device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
            for buffer in (self._hits, self._counts):
                reduced = buffer.to(device)
                dist.all_reduce(reduced)
                buffer.copy_(reduced.cpu())
        observed = self._counts > 0
        epoch_accuracy = self._hits[observed] / self._counts[observed]
        first = observed & ~self.seen
        blended = self.momentum * self.accuracy[observed] + (1 - self.momentum) * epoch_accuracy
        self.accuracy[observed] = torch.where(first[observed], epoch_accuracy, blended)
        self.seen |= observed
        self._hits.zero_()
        self._counts.zero_()

    def maybe_reweight(self, epoch: int) -> bool:
        """Recompute the weights every `reweight_interval` epochs (epoch counted from 1)."""
        if epoch % self.reweight_interval:
            return False
        self.weights = (1 - self.accuracy + self.eps).pow(self.difficulty_alpha)
        return True

    def stats(self) -> dict[str, float]:
        """What `stage4_hard_mining/hard_mining_stats` shows."""
        probs = self.weights / self.weights.sum()
        return {
            "mean_accuracy": float(self.accuracy[self.seen].mean()) if self.seen.any() else 0.0,
            "hard_fraction": float((self.accuracy[self.seen] < 0.5).double().mean()) if self.seen.any() else 0.0,
            "weight_max_over_min": float(self.weights.max() / self.weights.min()),
            "effective_samples": float(1.0 / probs.pow(2).sum()),
        }

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"accuracy": self.accuracy.clone(), "seen": self.seen.clone(), "weights": self.weights.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state["accuracy"].numel() != self.num_samples:
            raise ValueError(f"miner state holds {state['accuracy'].numel()} samples, dataset has {self.num_samples}")
        self.accuracy, self.seen, self.weights = (state[k].clone() for k in ("accuracy", "seen", "weights"))


class CurriculumSampler(Sampler[int]):
    """Weighted draw with replacement, blended from uniform (first epoch) to `weights` (last epoch).

    All ranks draw the same `num_replicas * ceil(N / num_replicas)` indices for an epoch and rank r takes
    positions r, r + R, r + 2R, ...: disjoint shares that together are the whole draw, equal in length.
    """

    def __init__(self, num_samples: int, total_epochs: int, num_replicas: int = 1, rank: int = 0, seed: int = 0):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside [0, {num_replicas})")
        self.num_samples, self.total_epochs = num_samples, max(1, total_epochs)
        self.num_replicas, self.rank, self.seed = num_replicas, rank, seed
        self.per_replica = math.ceil(num_samples / num_replicas)
        self.weights = torch.ones(num_samples, dtype=torch.float64)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def set_weights(self, weights: torch.Tensor) -> None:
        if weights.numel() != self.num_samples:
            raise ValueError(f"{weights.numel()} weights for {self.num_samples} samples")
        self.weights = weights.double().clone()

    def blend(self) -> float:
        """0 at the first epoch of the stage, 1 at the last."""
        return min(1.0, self.epoch / max(1, self.total_epochs - 1))

    def probabilities(self) -> torch.Tensor:
        uniform = torch.full((self.num_samples,), 1.0 / self.num_samples, dtype=torch.float64)
        hard = self.weights / self.weights.sum()
        t = self.blend()
        return (1 - t) * uniform + t * hard

    def epoch_draw(self) -> torch.Tensor:
        """The whole draw of this epoch, identical on every rank."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        total = self.per_replica * self.num_replicas
        return torch.multinomial(self.probabilities(), total, replacement=True, generator=generator)

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_draw()[self.rank :: self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.per_replica
