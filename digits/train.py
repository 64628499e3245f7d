"""Train one architecture from a config: build data and model, fit with the original's callbacks, save the best.

`reporter` receives every epoch's metrics as a dict, so Ray Tune / Ray Train can wrap `train_model`
(`reporter=ray.train.report`) while a plain run passes None. Nothing here imports Ray.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from digits.architectures import create_model, resolve_name
from digits.config import DigitsConfig
from digits.pipeline import DigitsData, build_datasets
from experiments import storage
from experiments.errors import UserError
from experiments.io import atomic_path

log = logging.getLogger(__name__)

Reporter = Callable[[dict], None]
BEST_MODEL_NAME = "best_model.keras"
CHECKPOINT_DIR = "checkpoints"


@dataclass
class TrainResult:
    """What a training run leaves behind: the trained model (best weights), its file and the history."""

    model: keras.Model
    model_dir: Path
    best_model_path: Path
    history: dict[str, list[float]]
    best_epoch: int
    data: DigitsData
    checkpoint_dir: Path
    params: int = field(init=False)

    def __post_init__(self) -> None:
        self.params = int(self.model.count_params())


def model_location(cfg: DigitsConfig, folder: str | None = None) -> str:
    """`<export_dir>/<nb_classes>cls_<GRAY|RGB>/<model>/`, the original's layout: a path, or a URI when export_dir is
    one. `folder` replaces the architecture's name (fine-tuning's `<model>_finetuned`)."""
    return storage.join(cfg.export_dir, cfg.export_group, folder or resolve_name(cfg.model_architecture))


def model_dir_for(cfg: DigitsConfig) -> Path:
    """`model_location` of a local export_dir."""
    return Path(model_location(cfg))


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """The config's optimizer by name; SGD gets momentum 0.9, without which it barely moves in few epochs."""
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    optimizers = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop,
                  "nadam": keras.optimizers.Nadam, "adamw": keras.optimizers.AdamW}
    return optimizers[name](learning_rate)


def make_loss(cfg: DigitsConfig, losses=keras.losses):
    """Focal loss when `focal_gamma` > 0 (hard digits weigh more), else cross-entropy with label smoothing.

    `losses` is `keras.losses` or tf_keras' for QAT, so both trainings optimise the same objective.
    """
    if cfg.focal_gamma > 0:
        return losses.CategoricalFocalCrossentropy(alpha=cfg.focal_alpha, gamma=cfg.focal_gamma)
    return losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)


def set_dropout(model: keras.Model, rate: float | None) -> None:
    """Give every Dropout layer `rate` (None keeps the architecture's own); rates are read at call time."""
    if rate is None:
        return
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = float(rate)


def compile_model(model: keras.Model, cfg: DigitsConfig) -> None:
    set_dropout(model, cfg.dropout)
    model.compile(optimizer=make_optimizer(cfg.optimizer, cfg.learning_rate), loss=make_loss(cfg),
                  metrics=["accuracy"])


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


def build_callbacks(cfg: DigitsConfig, keep_best: KeepBest, reporter: Reporter | None,
                    extra: Sequence[keras.callbacks.Callback] = ()) -> list[keras.callbacks.Callback]:
    callbacks: list[keras.callbacks.Callback] = [keep_best]
    plateau = cfg.reduce_lr_on_plateau
    if plateau.enabled:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=plateau.monitor, factor=plateau.factor,
                                                           patience=plateau.patience, min_lr=plateau.min_lr))
    stopping = cfg.early_stopping
    if stopping.enabled:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=stopping.monitor, patience=stopping.patience,
                                                       restore_best_weights=stopping.restore_best_weights))
    if reporter is not None:
        callbacks.append(ReportEpoch(reporter))
    return callbacks + list(extra)


def train_model(cfg: DigitsConfig, reporter: Reporter | None = None, data: DigitsData | None = None,
                model_dir: Path | None = None, verbose: int = 2,
                callbacks: Sequence[keras.callbacks.Callback] = (), model: keras.Model | None = None,
                before_fit: Callable[[], object] | None = None) -> TrainResult:
    """Train `cfg.model_architecture` on `cfg.data_sources`; writes `<model_dir>/best_model.keras`.

    `callbacks` run after the built-in ones each epoch (e.g. an INT8 probe that reports to Ray Tune).
    `model` continues training a built (e.g. loaded, partly frozen) model instead of a fresh one: fine-tuning.
    `before_fit` runs once the data and the model are built and checked, before anything is written, so a
    caller's own files (the resolved config) never appear for a run whose inputs are bad.
    """
    name = resolve_name(cfg.model_architecture)
    keras.utils.set_random_seed(cfg.seed)
    data = data if data is not None else build_datasets(cfg)
    model = model if model is not None else create_model(name, cfg)
    compile_model(model, cfg)
    model_dir = Path(model_dir) if model_dir is not None else model_dir_for(cfg)
    checkpoint_dir = model_dir / CHECKPOINT_DIR
    monitor = cfg.early_stopping.monitor if cfg.early_stopping.enabled else "val_accuracy"
    if not monitor.startswith("val_"):
        raise UserError(f"early_stopping.monitor: {monitor!r} must be a validation metric (val_accuracy, val_loss)")
    keep_best = KeepBest(monitor, checkpoint_dir)
    if before_fit is not None:
        before_fit()
    log.info("training %s (%d params) for up to %d epochs", name, model.count_params(), cfg.epochs)
    history = model.fit(data.train, epochs=cfg.epochs, steps_per_epoch=data.steps_per_epoch,
                        validation_data=data.validation,
                        callbacks=build_callbacks(cfg, keep_best, reporter, callbacks),
                        shuffle=False, verbose=verbose)
    best_path = save_model(model, model_dir / BEST_MODEL_NAME)
    logs = {key: [float(v) for v in values] for key, values in history.history.items()}
    return TrainResult(model, model_dir, best_path, logs, keep_best.best_epoch, data, checkpoint_dir)
