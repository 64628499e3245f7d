"""One Ray Tune trial: the Ray side of `digits.tuning.trial` (report to Tune, resume from Tune's checkpoint).

Runs inside a Ray worker that Tune reuses for the next trial (`reuse_actors`), so TensorFlow is imported and the
images are read once per worker. TensorFlow is told how many threads the trial owns (Ray's OMP_NUM_THREADS does
not reach it) and to grow GPU memory on demand, so fractional-GPU trials can share one device.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digits.config import DigitsConfig
from digits.tuning.config import SearchSpace
from digits.tuning.space import config_key, hyperparameters, trial_digits_config
from experiments import storage
from experiments.errors import UserError

log = logging.getLogger(__name__)

TRAINING_LOG_NAME = "trainings.jsonl"
TRAININGS_FOLDER = "trainings"  # in a bucket, which cannot append: one object per training started


@dataclass(frozen=True)
class TrialSettings:
    """What every trial shares, passed once through the object store (`tune.with_parameters`)."""

    base: DigitsConfig
    space: SearchSpace
    epochs: int
    threads: int
    eval_images: int
    experiment_location: str  # a folder or a URI (`TuneConfig.experiment_location`)


def configure_tensorflow(threads: int) -> None:
    """Threads = the trial's CPUs; GPU memory grown on demand (must run before TensorFlow builds anything)."""
    from digits.training.runtime import limit_threads

    limit_threads(threads)
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError as err:  # already initialised in this (reused) worker: the setting stands
            log.debug("GPU memory growth already fixed: %s", err)


def record_training(location: str, trial_id: str, values: dict[str, Any], resumed_from_epoch: int = 0) -> None:
    """Record each training started: the audit trail that shows no configuration was trained twice, and that a
    resumed trial continued where it stopped (`resumed_from_epoch`). A line of trainings.jsonl in a folder; in a
    bucket, `trainings/<trial id>-<ns>.json` (written from whichever node runs the trial)."""
    line = json.dumps(
        {
            "trial_id": trial_id,
            "key": config_key(values),
            "hyperparameters": values,
            "resumed_from_epoch": resumed_from_epoch,
            "started": time.time(),
        },
        sort_keys=True,
    )
    try:
        if storage.is_uri(location):
            storage.write_bytes(
                storage.join(location, TRAININGS_FOLDER, f"{trial_id}-{time.time_ns()}.json"), line.encode()
            )
            return
        Path(location).mkdir(parents=True, exist_ok=True)
        with open(Path(location) / TRAINING_LOG_NAME, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")  # one short O_APPEND write: concurrent trials do not interleave lines
    except (OSError, UserError) as err:  # a worker node without the shared storage: the trial still runs
        log.warning("cannot record the training in %s: %s", location, err)


def read_trainings(location: str | Path) -> list[dict]:
    """The trainings `record_training` recorded in an experiment (folder or URI), in the order they started."""
    if not storage.is_uri(location):
        path = Path(location) / TRAINING_LOG_NAME
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    folder = storage.join(location, TRAININGS_FOLDER)
    records = [json.loads(storage.read_bytes(storage.join(folder, name))) for name in storage.list_files(folder)]
    return sorted(records, key=lambda record: record["started"])


def report_to_tune(metrics: dict, checkpoint_dir: Path | None) -> None:
    """`digits.tuning.trial`'s reporter: Tune copies the checkpoint to the experiment before this returns."""
    from ray import tune

    checkpoint = tune.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir is not None else None
    tune.report(metrics, checkpoint=checkpoint)


def run_trial(config: dict[str, Any], settings: TrialSettings) -> None:
    """Ray Tune function trainable: one trial of `digits.tuning.trial`, continued from Tune's checkpoint if any."""
    from ray import tune

    configure_tensorflow(settings.threads)
    from digits.tuning.trial import read_state, train_trial

    values = hyperparameters(config, settings.space)
    cfg = trial_digits_config(settings.base, values, settings.epochs, early_stopping={"enabled": False})
    checkpoint = tune.get_checkpoint()
    with checkpoint.as_directory() if checkpoint is not None else contextlib.nullcontext() as folder:
        resume_from = Path(folder) if folder is not None else None
        record_training(
            settings.experiment_location, tune.get_context().get_trial_id(), values, read_state(resume_from).epoch
        )
        train_trial(cfg, report_to_tune, resume_from, settings.eval_images)
