"""A stage's optimiser and schedule: AdamW, linear warm-up then cosine decay to zero, stepped per batch."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from lpasrn.config import TrainConfig


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over `warmup_fraction` of the steps, then cosine decay to zero."""
    warmup = max(1, int(total_steps * warmup_fraction)) if warmup_fraction > 0 else 0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def build_optimisation(
    params: Iterable[nn.Parameter], lr: float, train: TrainConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the trainable parameters and its per-batch schedule for `total_steps` batches."""
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=train.weight_decay)
    return optimizer, warmup_cosine(optimizer, max(1, total_steps), train.warmup_fraction)
