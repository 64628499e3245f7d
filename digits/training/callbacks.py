"""The callbacks of a training run: keep (and checkpoint) the best epoch, hand each epoch's metrics to a reporter,
and the original's learning-rate and early-stopping schedules.

`reporter` receives every epoch's metrics as a dict, so Ray Tune can wrap a training (`digits.tuning.trial`)
while a plain run passes None. Nothing here imports Ray.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np

from digits.config import DigitsConfig
from experiments.io import atomic_path

Reporter = Callable[[dict], None]


def save_model(model: keras.Model, path: Path) -> Path:
    """Save a .keras file atomically (temp name beside it, then rename)."""
    with atomic_path(path) as tmp:
        model.save(tmp)
    return path


class ReportEpoch(keras.callbacks.Callback):
    """Hands each epoch's metrics (plus epoch number and learning rate) to a reporter."""

    def __init__(self, reporter: Reporter):
        super().__init__()
        self.reporter = reporter

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        metrics = {key: float(value) for key, value in (logs or {}).items()}
        metrics["epoch"] = epoch + 1
        metrics["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.reporter(metrics)


class KeepBest(keras.callbacks.Callback):
    """Tracks the best epoch by `monitor`, checkpoints it atomically and restores its weights at the end.

    Unlike EarlyStopping's restore, this also restores when training ran all its epochs, so the saved
    best_model.keras is always the best epoch, not the last. Without a `checkpoint_dir` the best weights are
    kept in memory only (a tuning trial reports checkpoints of its own).
    """

    def __init__(self, monitor: str, checkpoint_dir: Path | None):
        super().__init__()
        self.monitor = monitor
        self.mode_max = "acc" in monitor
        self.checkpoint_dir = checkpoint_dir
        self.best: float | None = None
        self.best_epoch = 0
        self.best_weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        value = float(value)
        better = self.best is None or (value > self.best if self.mode_max else value < self.best)
        if better:
            self.best, self.best_epoch = value, epoch + 1
            self.best_weights = self.model.get_weights()
            if self.checkpoint_dir is not None:
                save_model(self.model, self.checkpoint_dir / f"epoch_{epoch + 1:03d}.keras")

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def build_callbacks(
    cfg: DigitsConfig, keep_best: KeepBest, reporter: Reporter | None, extra: Sequence[keras.callbacks.Callback] = ()
) -> list[keras.callbacks.Callback]:
    callbacks: list[keras.callbacks.Callback] = [keep_best]
    plateau = cfg.reduce_lr_on_plateau
    if plateau.enabled:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=plateau.monitor, factor=plateau.factor, patience=plateau.patience, min_lr=plateau.min_lr
            )
        )
    stopping = cfg.early_stopping
    if stopping.enabled:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=stopping.monitor, patience=stopping.patience, restore_best_weights=stopping.restore_best_weights
            )
        )
    if reporter is not None:
        callbacks.append(ReportEpoch(reporter))
    return callbacks + list(extra)
