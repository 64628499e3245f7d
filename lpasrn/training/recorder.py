"""What a stage leaves behind, written by rank 0 only: the resolved config, `last/` (every epoch) and `best/`
(when the stage config's primary metric improves) checkpoints, `metrics.json` with the whole history, and the
TensorBoard events. When the stage folder is an object-store URI, rank 0 writes into a scratch folder and
uploads what changed after each epoch. Every rank keeps the history and the best value, so any rank can resume.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from experiments import storage
from experiments.config import save_resolved_config
from experiments.io import atomic_write_text, ensure_folder
from lpasrn.checkpoint import STATE_FILE, save_state
from lpasrn.config import LpasrnConfig
from lpasrn.training.events import StageEventWriter
from lpasrn.training.stages import StageSpec

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
FINISHED_AT_KEY = "finished_at"  # Unix time an epoch's training and validation ended (bench/train_overhead.py)
HARD_MINING_PREFIX = "hard_mining_"  # the miner's statistics, shown as one TensorBoard group


class StageRecorder:
    """The history, the best value of the primary metric, and (rank 0) everything written to the stage folder."""

    def __init__(self, stage: StageSpec, stage_dir: str | Path, is_main: bool, world_size: int):
        self.started_at = time.time()  # in metrics.json: a runner's start-up is the time before it (bench/)
        self.stage, self.is_main, self.world_size = stage, is_main, world_size
        self.history: list[dict[str, float]] = []
        self.best: float | None = None
        self._outputs = storage.MirroredFolder(stage_dir) if is_main else None
        self.folder: Path | None = self._outputs.local if self._outputs is not None else None
        self.events = StageEventWriter(self.folder / "events" if self.folder is not None else None, stage.tag_prefix)

    def restore(self, history: list[dict[str, float]], best: float | None) -> None:
        self.history, self.best = list(history), best

    def start(self, cfg: LpasrnConfig) -> None:
        if self.folder is not None:
            ensure_folder(self.folder)
            save_resolved_config(cfg, self.folder)

    def record(self, metrics: dict[str, float], state: Callable[[], dict[str, Any]]) -> bool:
        """Add an epoch's metrics; on rank 0 log them and save `last/` (and `best/` when the primary metric
        improved). `state` is called after the history holds this epoch. Returns whether it was the best."""
        value = metrics[self.stage.primary_metric]
        is_best = self.stage.is_better(value, self.best)
        if is_best:
            self.best = value
        self.history.append(metrics)
        if self.folder is not None:
            self._log(metrics)
            checkpoint = state()
            save_state(self.folder / "last", checkpoint)
            if is_best:
                save_state(self.folder / "best", checkpoint)
            self._write_metrics(finished=False)
            self._sync()
        return is_best

    def image(self, tag: str, image: np.ndarray | torch.Tensor, step: int) -> None:
        self.events.image(tag, image, step)

    def finish(self) -> None:
        """Mark the stage finished in metrics.json (what `stage_finished` and the pipeline's skip read)."""
        if self.folder is not None:
            self._write_metrics(finished=True)
            self.events.close()
            self._sync()

    def close(self) -> None:
        if self._outputs is not None:
            self._outputs.close()

    def _sync(self) -> None:
        self.events.flush()
        if self._outputs is not None:
            self._outputs.sync(last=[METRICS_FILE])

    def _write_metrics(self, finished: bool) -> None:
        assert self.folder is not None
        key = self.stage.primary_metric
        summary = {
            "stage": self.stage.index,
            "name": self.stage.name,
            "primary_metric": key,
            "mode": self.stage.metric_mode,
            "world_size": self.world_size,
            "best": next((row for row in self.history if row[key] == self.best), None),
            "finished": finished,
            "started_at": self.started_at,
            "history": self.history,
        }
        atomic_write_text(self.folder / METRICS_FILE, json.dumps(summary, indent=2))

    def _log(self, metrics: dict[str, float]) -> None:
        step = int(metrics["epoch"])
        hidden = ("epoch", "attempt", FINISHED_AT_KEY)
        self.events.scalars(
            {k: v for k, v in metrics.items() if k not in hidden and not k.startswith(HARD_MINING_PREFIX)}, step
        )
        mining = {k[len(HARD_MINING_PREFIX) :]: v for k, v in metrics.items() if k.startswith(HARD_MINING_PREFIX)}
        if mining:
            self.events.scalar_group("hard_mining_stats", mining, step)
        shown = ", ".join(
            f"{k} {v:.4g}" for k, v in metrics.items() if k.startswith(("train_", "val_")) and k != "train_seconds"
        )
        logger.info("%s epoch %d/%d: %s", self.stage.dir_name, step, self.stage.cfg.epochs, shown)


def stage_finished(stage_dir: str | Path) -> bool:
    """metrics.json says finished and the best checkpoint is there (a local folder or a URI)."""
    try:
        summary = json.loads(storage.read_bytes(storage.join(str(stage_dir), METRICS_FILE)))
    except (OSError, json.JSONDecodeError):
        return False
    return bool(summary.get("finished")) and storage.exists(storage.join(str(stage_dir), "best", STATE_FILE))
