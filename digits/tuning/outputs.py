"""The outputs of a finished `digits tune`: ranked results, the best configuration, its full training.

Reads the experiment folder with `experiments.analysis` (the same reader `experiments analyze` uses), so the
files agree with the analysis whatever the state of the Ray cluster.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from digits.config import DigitsConfig
from digits.tuning.config import TuneConfig
from digits.tuning.space import config_key, hyperparameters, trial_digits_config
from digits.tuning.unique import CACHE_NAME, ResultCache
from experiments.analysis import CONFIG_PREFIX, pareto_front, read_run
from experiments.config import config_to_yaml
from experiments.errors import UserError
from experiments.io import atomic_path, atomic_write_text

log = logging.getLogger(__name__)

ACCURACY, SIZE = "int8_accuracy", "int8_size_bytes"
BEST_JSON = "best_hyperparameters.json"
BEST_SNIPPET = "best_hyperparameters.yaml"
BEST_CONFIG = "best_config.yaml"
RESULTS_CSV = "detailed_tuning_results.csv"
RESULTS_PARQUET = "detailed_tuning_results.parquet"
BEST_MODEL_DIR = "best_model"
SNIPPET_KEYS = ("model_architecture", "optimizer", "learning_rate", "batch_size", "focal_gamma", "focal_alpha",
                "label_smoothing", "dropout", "quantize_model", "use_qat")


@dataclass
class TuneOutcome:
    """Where a finished experiment's outputs are, how many trials trained, and the best one."""

    experiment_dir: Path
    trials: int
    best: dict[str, Any]
    files: list[Path]
    repeats_answered: int


RESULT_COLUMNS = ("trial_id", "status", "iterations", ACCURACY, SIZE, "val_accuracy", "accuracy", "val_loss",
                  "time_total_s")


def _trial_config(row: pd.Series) -> dict[str, Any]:
    return {column.removeprefix(CONFIG_PREFIX): value for column, value in row.items()
            if column.startswith(CONFIG_PREFIX) and not (isinstance(value, float) and math.isnan(value))}


def results_table(tcfg: TuneConfig) -> pd.DataFrame:
    """One row per trained trial: canonical knobs, last INT8 metrics, Pareto flag; best first."""
    trials = read_run(tcfg.experiment_dir).trials
    if ACCURACY not in trials.columns:
        raise UserError(f"{tcfg.experiment_dir}: no trial reported {ACCURACY} (see the trials' error.txt)")
    knobs = [hyperparameters(_trial_config(row), tcfg.space) for _, row in trials.iterrows()]
    table = pd.concat([trials[[c for c in RESULT_COLUMNS if c in trials.columns]].reset_index(drop=True),
                       pd.DataFrame(knobs)], axis=1)
    table["config_key"] = [config_key(k) for k in knobs]
    table = table[table[ACCURACY].notna()].reset_index(drop=True)
    table["pareto"] = pareto_front(table, ACCURACY, SIZE)
    table = table.sort_values([ACCURACY, SIZE], ascending=[False, True], kind="stable").reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def _knobs(row: pd.Series, tcfg: TuneConfig) -> dict[str, Any]:
    names = ["architecture", "optimizer", "learning_rate", "batch_size", "focal_gamma", "focal_alpha",
             "label_smoothing", "dropout", "quantization"]
    values = {n: row[n] for n in names if n in row.index and not (isinstance(row[n], float) and math.isnan(row[n]))}
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in values.items()}


def best_config(knobs: dict[str, Any], tcfg: TuneConfig) -> DigitsConfig:
    """The full digits config of the best trial, trained for base.epochs, exported under the experiment."""
    return trial_digits_config(tcfg.base, knobs, tcfg.base.epochs, export_dir=tcfg.experiment_dir / BEST_MODEL_DIR)


def _write_table(table: pd.DataFrame, exp_dir: Path) -> list[Path]:
    csv_path = exp_dir / RESULTS_CSV
    atomic_write_text(csv_path, table.to_csv(index=False))
    parquet_path = exp_dir / RESULTS_PARQUET
    frame = table.copy()
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].astype("string")
    with atomic_path(parquet_path) as tmp:
        frame.to_parquet(tmp, index=False)
    return [csv_path, parquet_path]


def write_outputs(tcfg: TuneConfig, train_best: bool | None = None) -> TuneOutcome:
    exp_dir = tcfg.experiment_dir
    table = results_table(tcfg)
    files = _write_table(table, exp_dir)
    best_row = table.iloc[0]
    knobs = _knobs(best_row, tcfg)
    cfg = best_config(knobs, tcfg)
    metrics = {k: (best_row[k].item() if hasattr(best_row[k], "item") else best_row[k])
               for k in (ACCURACY, SIZE, "val_accuracy", "iterations") if k in best_row.index}
    front = [{"trial_id": r["trial_id"], **_knobs(r, tcfg), ACCURACY: float(r[ACCURACY]), SIZE: float(r[SIZE])}
             for _, r in table[table["pareto"]].iterrows()]
    cache = ResultCache(exp_dir / CACHE_NAME)
    summary = {"objective": tcfg.objective, "metric": ACCURACY if tcfg.objective == "single" else [ACCURACY, SIZE],
               "mode": "max" if tcfg.objective == "single" else ["max", "min"],
               "best": {"trial_id": best_row["trial_id"], "hyperparameters": knobs, **metrics},
               "pareto_front": front, "trials_trained": int(len(table)),
               "repeats_answered_from_cache": cache.repeats_answered}
    files.append(atomic_write_text(exp_dir / BEST_JSON, json.dumps(summary, indent=2, default=str) + "\n"))
    snippet = {key: value for key, value in cfg.model_dump(mode="json").items() if key in SNIPPET_KEYS
               and not (key == "focal_alpha" and cfg.focal_gamma == 0)
               and not (key == "label_smoothing" and cfg.focal_gamma > 0)}
    header = f"# best of {tcfg.name}: INT8 accuracy {metrics.get(ACCURACY, float('nan')):.4f}; paste into " \
             "an experiments/digits/*.yaml\n"
    files.append(atomic_write_text(exp_dir / BEST_SNIPPET, header + yaml.safe_dump(snippet, sort_keys=False)))
    files.append(atomic_write_text(exp_dir / BEST_CONFIG, config_to_yaml(cfg)))
    if tcfg.train_best if train_best is None else train_best:
        files.extend(train_best_model(cfg, tcfg))
    return TuneOutcome(exp_dir, int(len(table)), summary["best"], files, cache.repeats_answered)


def train_best_model(cfg: DigitsConfig, tcfg: TuneConfig) -> list[Path]:
    """Train the best configuration for base.epochs with the normal workflow (exports, metrics, plot)."""
    from digits.runtime import limit_threads

    limit_threads(max(1, math.floor(tcfg.cpus_per_trial)))
    from digits.train import model_dir_for
    from digits.workflow import train_and_export

    log.info("training the best configuration for %d epochs", cfg.epochs)
    train_and_export(cfg, verbose=0)
    return sorted(p for p in model_dir_for(cfg).iterdir() if p.is_file())
