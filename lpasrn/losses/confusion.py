"""CharacterConfusionTracker: which plate characters the OCR confuses on SR images, as loss weights."""

from __future__ import annotations

import torch
import torch.distributed as dist

from lpasrn.data.charset import CHARSET


class CharacterConfusionTracker:
    """A 36x36 confusion matrix (rows: true character, columns: predicted), rebuilt every validation epoch.

    A character whose error rate exceeds `threshold` weighs `1 + alpha * error_rate` in the LCOFL
    cross-entropy, clamped to `max_weight`; the others weigh 1.
    """

    def __init__(self, alpha: float = 2.0, threshold: float = 0.05, max_weight: float = 5.0):
        self.alpha, self.threshold, self.max_weight = alpha, threshold, max_weight
        self.matrix = torch.zeros(len(CHARSET), len(CHARSET), dtype=torch.float64)
        self._weights = torch.ones(len(CHARSET))

    def reset(self) -> None:
        self.matrix.zero_()

    def update(self, predicted: torch.Tensor, target: torch.Tensor) -> None:
        """Add character pairs (any shape, equal shapes, class indices)."""
        pairs = target.flatten().long().cpu() * len(CHARSET) + predicted.flatten().long().cpu()
        counts = torch.bincount(pairs, minlength=len(CHARSET) ** 2).reshape(len(CHARSET), len(CHARSET))
        self.matrix += counts.double()

    def all_reduce(self) -> None:
        """Sum the matrix over DDP ranks so every rank derives the same weights."""
        if dist.is_available() and dist.is_initialized():
            device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
            matrix = self.matrix.to(device)
            dist.all_reduce(matrix)
            self.matrix = matrix.cpu()

    def error_rates(self) -> torch.Tensor:
        totals = self.matrix.sum(1)
        correct = self.matrix.diagonal()
        return torch.where(totals > 0, 1 - correct / totals.clamp(min=1), torch.zeros_like(totals))

    def rebuild_weights(self) -> torch.Tensor:
        """Recompute the per-character weights from the current matrix (call after a validation epoch)."""
        rates = self.error_rates()
        weights = torch.where(rates > self.threshold, 1 + self.alpha * rates, torch.ones_like(rates))
        self._weights = weights.clamp(max=self.max_weight).float()
        return self._weights

    @property
    def weights(self) -> torch.Tensor:
        return self._weights

    def most_confused(self, top: int = 5) -> list[tuple[str, str, int]]:
        off_diagonal = self.matrix.clone()
        off_diagonal.fill_diagonal_(0)
        values, flat = off_diagonal.flatten().topk(top)
        return [
            (CHARSET[i // len(CHARSET)], CHARSET[i % len(CHARSET)], int(v))
            for v, i in zip(values.tolist(), flat.tolist())
            if v > 0
        ]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"matrix": self.matrix.clone(), "weights": self._weights.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.matrix = state["matrix"].clone().double()
        self._weights = state["weights"].clone().float()
