"""TensorBoard events (tensorboardX) with the seed's tags: `stage<k>_<name>/<metric>`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


class StageEventWriter:
    """Rank 0 writes; other ranks get a writer that records nothing (so call sites need no rank checks)."""

    def __init__(self, log_dir: str | Path | None, prefix: str):
        self.prefix = prefix
        self._writer = None
        if log_dir is not None:
            from tensorboardX import SummaryWriter

            self._writer = SummaryWriter(str(log_dir), flush_secs=10)

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self._writer is None:
            return
        for name, value in values.items():
            self._writer.add_scalar(f"{self.prefix}/{name}", float(value), step)

    def scalar_group(self, name: str, values: dict[str, float], step: int) -> None:
        """A family of scalars under one tag (e.g. `hard_mining_stats`)."""
        if self._writer is None:
            return
        for key, value in values.items():
            self._writer.add_scalar(f"{self.prefix}/{name}/{key}", float(value), step)
        self._writer.add_text(f"{self.prefix}/{name}", ", ".join(f"{k}={v:.4g}" for k, v in values.items()), step)

    def image(self, name: str, image: np.ndarray | torch.Tensor, step: int) -> None:
        """An HWC uint8 array or a CHW float tensor in [0, 1]."""
        if self._writer is None:
            return
        if isinstance(image, torch.Tensor):
            self._writer.add_image(f"{self.prefix}/{name}", image.detach().float().clamp(0, 1).cpu(), step)
        else:
            self._writer.add_image(f"{self.prefix}/{name}", image, step, dataformats="HWC")

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def strip_image(lr: torch.Tensor, sr: torch.Tensor, hr: torch.Tensor, rows: int = 4) -> torch.Tensor:
    """LR | SR | HR side by side for the first `rows` plates, as one CHW image (LR up-scaled, nearest)."""
    lr_up = torch.nn.functional.interpolate(lr[:rows].float(), size=hr.shape[-2:], mode="nearest")
    triples = [torch.cat([a, b.float().clamp(0, 1), c.float()], dim=-1) for a, b, c in zip(lr_up, sr[:rows], hr[:rows])]
    return torch.cat(triples, dim=-2).cpu()
