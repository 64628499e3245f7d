"""Train one architecture from a config: build data and model, fit with the original's callbacks, save the best.

The loop only: the loss and optimizer come from `objective`, the best-epoch keeping and the per-epoch reporter
from `callbacks`. Nothing here imports Ray.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras

from digits.architectures import create_model, resolve_name
from digits.config import DigitsConfig
from digits.data.datasets import DigitsData, build_datasets
from digits.training.callbacks import KeepBest, Reporter, build_callbacks, save_model
from digits.training.objective import compile_model
from experiments import storage
from experiments.errors import UserError

log = logging.getLogger(__name__)

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


def train_model(
    cfg: DigitsConfig,
    reporter: Reporter | None = None,
    data: DigitsData | None = None,
    model_dir: Path | None = None,
    verbose: int = 2,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    model: keras.Model | None = None,
    before_fit: Callable[[], object] | None = None,
) -> TrainResult:
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
    history = model.fit(
        data.train,
        epochs=cfg.epochs,
        steps_per_epoch=data.steps_per_epoch,
        validation_data=data.validation,
        callbacks=build_callbacks(cfg, keep_best, reporter, callbacks),
        shuffle=False,
        verbose=verbose,
    )
    best_path = save_model(model, model_dir / BEST_MODEL_NAME)
    logs = {key: [float(v) for v in values] for key, values in history.history.items()}
    return TrainResult(model, model_dir, best_path, logs, keep_best.best_epoch, data, checkpoint_dir)
