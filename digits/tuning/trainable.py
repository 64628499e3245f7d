"""One Ray Tune trial: the trial's digits config trained for `epochs_per_trial`, INT8-scored every epoch.

Runs inside a Ray worker. TensorFlow is told how many threads the trial owns (Ray's OMP_NUM_THREADS does not
reach it) and to grow GPU memory on demand, so fractional-GPU trials can share one device.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digits.config import DigitsConfig
from digits.tuning.config import SearchSpace
from digits.tuning.space import config_key, hyperparameters, trial_digits_config

log = logging.getLogger(__name__)

TRAINING_LOG_NAME = "trainings.jsonl"


@dataclass(frozen=True)
class TrialSettings:
    """What every trial shares, passed once through the object store (`tune.with_parameters`)."""

    base: DigitsConfig
    space: SearchSpace
    epochs: int
    threads: int
    eval_images: int
    experiment_dir: str


def configure_tensorflow(threads: int) -> None:
    """Threads = the trial's CPUs; GPU memory grown on demand (must run before TensorFlow builds anything)."""
    from digits.runtime import limit_threads

    limit_threads(threads)
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError as err:  # already initialised in this (reused) worker: the setting stands
            log.debug("GPU memory growth already fixed: %s", err)


def record_training(experiment_dir: str, trial_id: str, values: dict[str, Any]) -> None:
    """Append one line per training started: the audit trail that shows no configuration was trained twice."""
    line = json.dumps({"trial_id": trial_id, "key": config_key(values), "hyperparameters": values,
                       "started": time.time()}, sort_keys=True)
    try:
        Path(experiment_dir).mkdir(parents=True, exist_ok=True)
        with open(Path(experiment_dir) / TRAINING_LOG_NAME, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")  # one short O_APPEND write: concurrent trials do not interleave lines
    except OSError as err:  # a worker node without the shared storage: the trial still runs
        log.warning("cannot record the training in %s: %s", experiment_dir, err)


def run_trial(config: dict[str, Any], settings: TrialSettings) -> None:
    """Ray Tune function trainable: build, train, report `int8_accuracy` / `int8_size_bytes` each epoch."""
    from ray import tune

    configure_tensorflow(settings.threads)
    from digits.int8_probe import Int8Probe
    from digits.pipeline import build_datasets
    from digits.train import train_model

    values = hyperparameters(config, settings.space)
    context = tune.get_context()
    record_training(settings.experiment_dir, context.get_trial_id(), values)
    work_dir = Path(tempfile.mkdtemp(prefix="trial-", dir=os.getcwd()))
    try:
        cfg = trial_digits_config(settings.base, values, settings.epochs, export_dir=work_dir,
                                  early_stopping={"enabled": False})
        data = build_datasets(cfg)
        probe = Int8Probe(cfg, data, tune.report, settings.eval_images)
        train_model(cfg, data=data, model_dir=work_dir, verbose=0, callbacks=[probe])
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
