"""One tuning trial, without Ray: train a trial's digits config epoch by epoch, report each epoch with a
checkpoint to resume from, and score the INT8 model once, at the end.

Per epoch the report holds Keras' metrics, `best_val_accuracy` (the signal the rungs decide on),
`val_images` (how noisy that signal is), `epoch` and `trial_epochs` (all training so far, for the budget).
The last report adds `int8_accuracy` and `int8_size_bytes` of the best epoch's weights converted to full
INT8 (after QAT fine-tuning when the trial uses QAT; those epochs are counted in `trial_epochs`). Only a
trial that got there has an INT8 score, so a trial stopped early or interrupted is never ranked as finished.

A checkpoint is a folder: the model with its optimizer state (`model.keras`), the best epoch's weights
(`best_weights.npz`) and `state.json`; a trial given one continues at the epoch after it. The last report's
checkpoint is the trial's result: the best epoch's model and its INT8 TFLite (`model_int8.tflite`), with the
final metrics in `state.json` (a trial resumed from it only reports them again).

Images are read from disk once per process (`trial_data`): Ray reuses a worker for the next trial, and only
the batching differs between trials.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from digits.config import DigitsConfig
from digits.data.datasets import DigitsData, assemble_datasets, load_splits, to_float
from digits.data.sources import LabelledImages

log = logging.getLogger(__name__)

Reporter = Callable[[dict, "Path | None"], None]  # (metrics, checkpoint folder or None)
MODEL_FILE = "model.keras"
BEST_WEIGHTS_FILE = "best_weights.npz"
INT8_FILE = "model_int8.tflite"
STATE_FILE = "state.json"
_DATA_KEYS = ("data_sources", "nb_classes", "input_channels", "input_height", "input_width", "validation_split", "seed")
_SPLITS: dict[str, tuple[list[LabelledImages], LabelledImages]] = {}


@dataclass
class TrialState:
    """What a checkpoint holds besides the weights: where the trial is and its best epoch so far."""

    epoch: int = 0
    best_val_accuracy: float | None = None
    best_epoch: int = 0
    final: dict | None = None  # the last report, once the INT8 model is scored


def trial_data(cfg: DigitsConfig) -> DigitsData:
    """The trial's tf.data datasets over images read once per process (keyed by what decides which images)."""
    dumped = cfg.model_dump(mode="json")
    key = json.dumps({name: dumped[name] for name in _DATA_KEYS}, sort_keys=True)
    if key not in _SPLITS:
        _SPLITS[key] = load_splits(cfg)
    train_parts, validation_set = _SPLITS[key]
    return assemble_datasets(cfg, train_parts, validation_set, [source.weight for source in cfg.data_sources])


def evaluation_images(data: DigitsData, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The validation images the INT8 model is scored on: all, or a seeded sample of `count`."""
    images, labels = data.validation_set.images, data.validation_set.labels
    if count and count < len(labels):
        pick = np.random.default_rng(seed).permutation(len(labels))[:count]
        images, labels = images[pick], labels[pick]
    return to_float(images), labels


def save_checkpoint(folder: Path, model: keras.Model, best_weights: list[np.ndarray] | None, state: TrialState) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / MODEL_FILE)
    if best_weights is not None:
        np.savez(folder / BEST_WEIGHTS_FILE, *best_weights)
    (folder / STATE_FILE).write_text(json.dumps(asdict(state)), encoding="utf-8")
    return folder


def load_checkpoint(folder: Path) -> tuple[keras.Model, list[np.ndarray] | None, TrialState]:
    """The compiled model (optimizer state included), the best weights and the state of a checkpoint folder."""
    model = keras.models.load_model(folder / MODEL_FILE)
    best = None
    if (folder / BEST_WEIGHTS_FILE).is_file():
        with np.load(folder / BEST_WEIGHTS_FILE, allow_pickle=False) as stored:
            best = [stored[f"arr_{i}"] for i in range(len(stored.files))]
    state = TrialState(**json.loads((folder / STATE_FILE).read_text(encoding="utf-8")))
    return model, best, state


def read_state(folder: Path | None) -> TrialState:
    """The state of a checkpoint folder (a fresh one without)."""
    if folder is None or not (Path(folder) / STATE_FILE).is_file():
        return TrialState()
    return TrialState(**json.loads((Path(folder) / STATE_FILE).read_text(encoding="utf-8")))


class EpochReports(keras.callbacks.Callback):
    """After each epoch but the last: the epoch's metrics and a checkpoint, handed to the reporter."""

    def __init__(self, keep_best, report: Reporter, val_images: int, epochs: int):
        super().__init__()
        self.keep_best, self.report, self.val_images, self.epochs = keep_best, report, val_images, epochs
        self.last: dict[str, float] = {}

    def metrics(self, epoch: int, logs: dict | None) -> dict:
        metrics = {key: float(value) for key, value in (logs or {}).items()}
        metrics.update(
            epoch=epoch,
            trial_epochs=epoch,
            val_images=self.val_images,
            best_val_accuracy=float(self.keep_best.best if self.keep_best.best is not None else 0.0),
            learning_rate=float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
        )
        return metrics

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.last = self.metrics(epoch + 1, logs)
        if epoch + 1 >= self.epochs:
            return  # the last epoch is reported with the INT8 score
        state = TrialState(epoch + 1, self.keep_best.best, self.keep_best.best_epoch)
        _report_with_checkpoint(
            self.report,
            self.last,
            lambda folder: save_checkpoint(folder, self.model, self.keep_best.best_weights, state),
        )


def _report_with_checkpoint(report: Reporter, metrics: dict, write: Callable[[Path], object]) -> None:
    """Hand `metrics` and a checkpoint folder filled by `write` to the reporter; the folder is removed after
    (Tune has copied it into the experiment by then)."""
    folder = Path(tempfile.mkdtemp(prefix="digits-trial-ckpt-"))
    try:
        write(folder)
        report(metrics, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def train_trial(
    cfg: DigitsConfig, report: Reporter, resume_from: Path | None = None, eval_images: int = 0, verbose: int = 0
) -> dict:
    """Train `cfg` for `cfg.epochs` (continuing `resume_from`), then score its INT8 model; returns the last report.

    `cfg` should have early stopping off: the rungs decide when a trial stops.
    """
    from digits.architectures import create_model, resolve_name
    from digits.export.int8 import int8_accuracy, int8_model_bytes
    from digits.export.qat import qat_epochs
    from digits.training.callbacks import KeepBest, build_callbacks
    from digits.training.objective import compile_model

    finished = read_state(resume_from).final
    if finished is not None:  # it had finished: say so again
        report(finished, None)
        return finished
    keras.backend.clear_session()  # a reused worker: drop the previous trial's graphs
    keras.utils.set_random_seed(cfg.seed)
    data = trial_data(cfg)
    keep_best = KeepBest("val_accuracy", None)
    if resume_from is not None:
        model, keep_best.best_weights, state = load_checkpoint(Path(resume_from))
        keep_best.best, keep_best.best_epoch = state.best_val_accuracy, state.best_epoch
        log.info("continuing trial at epoch %d", state.epoch + 1)
    else:
        model, state = create_model(resolve_name(cfg.model_architecture), cfg), TrialState()
        compile_model(model, cfg)
    epochs = EpochReports(keep_best, report, len(data.validation_set), cfg.epochs)
    model.fit(
        data.train,
        epochs=cfg.epochs,
        initial_epoch=state.epoch,
        steps_per_epoch=data.steps_per_epoch,
        validation_data=data.validation,
        callbacks=build_callbacks(cfg, keep_best, None, [epochs]),
        shuffle=False,
        verbose=verbose,
    )
    # KeepBest has put the best epoch's weights back: that model is what the trial delivers
    content = int8_model_bytes(model, cfg, data)
    images, labels = evaluation_images(data, eval_images, cfg.seed)
    final = dict(epochs.last)
    final.update(
        int8_accuracy=int8_accuracy(content, images, labels),
        int8_size_bytes=len(content),
        qat_epochs=qat_epochs(cfg) if cfg.use_qat else 0,
    )
    final["trial_epochs"] = cfg.epochs + final["qat_epochs"]
    done = TrialState(cfg.epochs, keep_best.best, keep_best.best_epoch, final)

    def write(folder: Path) -> None:
        save_checkpoint(folder, model, None, done)
        (folder / INT8_FILE).write_bytes(content)

    _report_with_checkpoint(report, final, write)
    return final
