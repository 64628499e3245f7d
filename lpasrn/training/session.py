"""How a stage's training function talks to whatever runs it: Ray Train workers or a plain local loop.

The training function only sees a `TrainSession`: its rank, its device, how to wrap a model for data
parallelism, the state to resume (if this stage was interrupted) and `report`, called once per epoch on
every rank. `LocalSession` is the plain-loop implementation; the Ray one lives in `lpasrn.ray_glue`.
Both resume from the stage folder's `last/` checkpoint: the one checkpoint tree per stage, which also seeds the
next stage, so no runner keeps (or copies every epoch) a second one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from experiments import storage
from lpasrn.checkpoint import STATE_FILE, load_state


class TrainBatches(Protocol):
    """Training batches a runner streams to this rank (Ray Data over a packed dataset): the same batch dicts a
    DataLoader over `PlateSRDataset` gives, one pass per epoch, the same number of batches on every rank."""

    def set_epoch(self, epoch: int) -> None: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[dict[str, Any]]: ...


class TrainSession(Protocol):
    world_rank: int
    world_size: int
    device: torch.device
    show_progress: bool

    def wrap_model(self, model: nn.Module) -> nn.Module:
        """Move to the device and wrap for data parallelism (DDP) where there is more than one worker."""

    def resume_state(self) -> dict[str, Any] | None:
        """Full state of this stage's latest checkpoint when the stage is being resumed, else None."""

    def report(self, metrics: dict[str, float], last: bool) -> None:
        """Called once per epoch on every rank, after rank 0 has saved the epoch's checkpoint; `last` for the
        stage's final one. A runner may pass on fewer (the stage folder keeps every epoch), never the last."""

    def train_batches(self, batch_size: int, seed: int) -> TrainBatches | None:
        """This rank's stream of the train split when the runner streams it, else None (read it here)."""


def stage_folder_state(stage_dir: str | Path) -> dict[str, Any] | None:
    """The stage folder's `last/` checkpoint (local or at a URI), or None when the stage has not saved one."""
    last = storage.join(str(stage_dir), "last", STATE_FILE)
    return load_state(last) if storage.exists(last) else None


class LocalSession:
    """One process, no Ray: resumes from the stage folder's `last/` checkpoint, as a rerun after a crash."""

    world_rank = 0
    world_size = 1

    def __init__(self, stage_dir: str | Path, use_gpu: bool = False, show_progress: bool = True):
        self.stage_dir = str(stage_dir)
        self.device = torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")
        self.show_progress = show_progress

    def wrap_model(self, model: nn.Module) -> nn.Module:
        return model.to(self.device)

    def resume_state(self) -> dict[str, Any] | None:
        return stage_folder_state(self.stage_dir)

    def report(self, metrics: dict[str, float], last: bool) -> None:
        """Nothing to hand over: the stage folder's metrics.json and last/ already hold everything."""

    def train_batches(self, batch_size: int, seed: int) -> None:
        """No stream here: a packed dataset is read with pyarrow, like a folder (`lpasrn.data.packed`)."""
        return None
