"""The outputs of `digits tune`: ranked results, the best configuration, its full training.

The results table is written as trials end (from Tune's trials, `progress.ResultsAsTrialsFinish`) and once
more at the end from the experiment folder with `experiments.analysis` (the reader `experiments analyze`
uses), so the files agree with the analysis whatever the state of the Ray cluster. Only trials that finished
and were scored on their INT8 model are ranked; trials stopped early are listed after them.
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
from digits.tuning.config import RESULTS_CSV, RESULTS_PARQUET, SearchSpace, TuneConfig
from digits.tuning.space import KNOBS, config_key, hyperparameters, trial_digits_config
from digits.tuning.unique import CACHE_NAME, ResultCache
from experiments import paths, storage
from experiments.analysis import CONFIG_PREFIX, pareto_front, read_run
from experiments.config import config_to_yaml
from experiments.errors import UserError
from experiments.io import atomic_path, atomic_write_text

log = logging.getLogger(__name__)

ACCURACY, SIZE = "int8_accuracy", "int8_size_bytes"
BEST_JSON = "best_hyperparameters.json"
BEST_SNIPPET = "best_hyperparameters.yaml"
BEST_CONFIG = "best_config.yaml"
BEST_MODEL_DIR = "best_model"
SNIPPET_KEYS = (
    "model_architecture",
    "optimizer",
    "learning_rate",
    "batch_size",
    "focal_gamma",
    "focal_alpha",
    "label_smoothing",
    "dropout",
    "quantize_model",
    "use_qat",
)


@dataclass
class TuneOutcome:
    """Where a finished experiment's outputs are (`location`: its folder or URI; `experiment_dir`: the local
    folder the driver wrote them in, the same folder on a disk), how many trials trained, and the best one."""

    experiment_dir: Path
    trials: int
    best: dict[str, Any]
    files: list[Path | str]
    repeats_answered: int
    trial_epochs: int = 0
    location: str = ""


RESULT_COLUMNS = (
    "trial_id",
    "outcome",
    "epoch",
    "trial_epochs",
    ACCURACY,
    SIZE,
    "best_val_accuracy",
    "val_accuracy",
    "accuracy",
    "val_loss",
    "time_total_s",
)
INTEGER_COLUMNS = ("epoch", "trial_epochs", SIZE, "qat_epochs", "val_images", "iterations", "training_iteration")
KNOB_NAMES = ("architecture", *KNOBS)  # the result table's knob columns, in the search space's order
OUTCOME_ORDER = {"finished": 0, "stopped": 1, "unfinished": 2, "error": 3}


def _trial_config(row: pd.Series) -> dict[str, Any]:
    return {
        column.removeprefix(CONFIG_PREFIX): value
        for column, value in row.items()
        if column.startswith(CONFIG_PREFIX) and not (isinstance(value, float) and math.isnan(value))
    }


def _outcome(row: pd.Series) -> str:
    """finished: scored on its INT8 model; stopped: at a rung (no INT8 score); unfinished: still running or
    interrupted; error."""
    if row.get("status") == "ERROR":
        return "error"
    if pd.notna(row.get(ACCURACY)):
        return "finished"
    return "stopped" if row.get("status") == "TERMINATED" else "unfinished"


def trials_frame(trials: list, status: dict[str, str] | None = None) -> pd.DataFrame:
    """Tune's Trial objects as the rows `experiments.analysis.read_run` gives (config/<knob>, last metrics);
    `status` replaces the status of some trials (by id)."""
    status = status or {}
    rows = []
    for trial in trials:
        result = {
            key: value
            for key, value in (trial.last_result or {}).items()
            if key != "config" and (value is None or isinstance(value, (int, float, str, bool)))
        }
        config = {f"{CONFIG_PREFIX}{key}": value for key, value in (trial.config or {}).items()}
        rows.append(
            {**result, "trial_id": trial.trial_id, "status": status.get(trial.trial_id, trial.status), **config}
        )
    return pd.DataFrame(rows)


def results_table(trials: pd.DataFrame, space: SearchSpace) -> pd.DataFrame:
    """One row per trial with its canonical knobs: finished trials ranked by INT8 accuracy (then size), then
    trials stopped early (furthest first), unfinished and errored ones; `rank` only for finished trials."""
    if trials.empty:
        return pd.DataFrame(columns=["rank", *RESULT_COLUMNS, *KNOB_NAMES, "config_key", "pareto"])
    trials = trials.reset_index(drop=True)
    knobs = [hyperparameters(_trial_config(row), space) for _, row in trials.iterrows()]
    table = pd.concat([trials[[c for c in RESULT_COLUMNS if c in trials.columns]], pd.DataFrame(knobs)], axis=1)
    table["outcome"] = [_outcome(row) for _, row in trials.iterrows()]
    for column in (ACCURACY, SIZE, "epoch", "best_val_accuracy"):
        if column not in table.columns:
            table[column] = math.nan
    table["config_key"] = [config_key(k) for k in knobs]
    finished = table["outcome"] == "finished"
    table["pareto"] = pareto_front(table, ACCURACY, SIZE) & finished
    table["_order"] = table["outcome"].map(OUTCOME_ORDER)
    table = table.sort_values(
        ["_order", ACCURACY, SIZE, "epoch", "best_val_accuracy"],
        ascending=[True, False, True, False, False],
        kind="stable",
        na_position="last",
    )
    table = table.drop(columns="_order").reset_index(drop=True)
    ranks = pd.array([i + 1 if done else pd.NA for i, done in enumerate(table["outcome"] == "finished")], dtype="Int64")
    table.insert(0, "rank", ranks)
    for column in INTEGER_COLUMNS:  # integers stay integers, also where a trial has no value
        if column in table.columns:
            table[column] = pd.to_numeric(table[column], errors="coerce").round().astype("Int64")
    first = ["rank", *RESULT_COLUMNS]
    return table[[c for c in first if c in table.columns] + [c for c in table.columns if c not in first]]


def _plain(value: Any) -> Any:
    """numpy / pandas scalars as JSON's own types (NA as None)."""
    if value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _knobs(row: pd.Series, tcfg: TuneConfig) -> dict[str, Any]:
    values = {name: _plain(row[name]) for name in KNOB_NAMES if name in row.index and _plain(row[name]) is not None}
    return hyperparameters(values, tcfg.space)


def best_config(knobs: dict[str, Any], tcfg: TuneConfig) -> DigitsConfig:
    """The full digits config of the best trial, trained for base.epochs, exported under the experiment."""
    export_dir = paths.path_or_uri(storage.join(tcfg.experiment_location, BEST_MODEL_DIR))
    return trial_digits_config(tcfg.base, knobs, tcfg.base.epochs, export_dir=export_dir)


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


def write_results(trials: pd.DataFrame, tcfg: TuneConfig) -> pd.DataFrame:
    """detailed_tuning_results.csv/.parquet of `trials` (rows as `read_run` or `trials_frame` give them)."""
    table = results_table(trials, tcfg.space)
    _write_table(table, tcfg.experiment_dir)
    return table


def write_outputs(tcfg: TuneConfig, train_best: bool | None = None) -> TuneOutcome:
    """The results table, best_hyperparameters.json/.yaml and best_config.yaml from the experiment's trials (and
    best_model/ unless told not to); in a bucket, read from and uploaded to it."""
    from digits.tuning.mirror import experiment_mirror, published, pull_trial_records

    exp_dir = tcfg.experiment_dir
    pull_trial_records(tcfg)
    table = results_table(read_run(exp_dir).trials, tcfg.space)
    files = _write_table(table, exp_dir)
    finished = table[table["outcome"] == "finished"]
    if finished.empty:
        raise UserError(
            f"{exp_dir}: no trial finished with an INT8 score (see the trials' error.txt, or raise budget_epochs)"
        )
    best_row = finished.iloc[0]
    knobs = _knobs(best_row, tcfg)
    cfg = best_config(knobs, tcfg)
    metric_names = (ACCURACY, SIZE, "best_val_accuracy", "val_accuracy", "epoch", "trial_epochs")
    metrics = {k: _plain(best_row[k]) for k in metric_names if k in best_row.index}
    front = [
        {"trial_id": r["trial_id"], **_knobs(r, tcfg), ACCURACY: float(r[ACCURACY]), SIZE: _plain(r[SIZE])}
        for _, r in finished[finished["pareto"]].iterrows()
    ]
    cache = ResultCache(exp_dir / CACHE_NAME)
    spent = pd.to_numeric(table.get("trial_epochs", pd.Series(dtype=float)), errors="coerce").fillna(0)
    summary: dict[str, Any] = {
        "objective": tcfg.objective,
        "metric": ACCURACY if tcfg.objective == "single" else [ACCURACY, SIZE],
        "mode": "max" if tcfg.objective == "single" else ["max", "min"],
        "best": {"trial_id": best_row["trial_id"], "hyperparameters": knobs, **metrics},
        "pareto_front": front,
        "trials_trained": int(len(table)),
        "trials_finished": int(len(finished)),
        "trials_stopped_early": int((table["outcome"] == "stopped").sum()),
        "trial_epochs_spent": int(spent.sum()),
        "budget_epochs": tcfg.budget_epochs,
        "repeats_answered_from_cache": cache.repeats_answered,
    }
    files.append(atomic_write_text(exp_dir / BEST_JSON, json.dumps(summary, indent=2, default=str) + "\n"))
    snippet = {
        key: value
        for key, value in cfg.model_dump(mode="json").items()
        if key in SNIPPET_KEYS
        and not (key == "focal_alpha" and cfg.focal_gamma == 0)
        and not (key == "label_smoothing" and cfg.focal_gamma > 0)
    }
    header = (
        f"# best of {tcfg.name}: INT8 accuracy {metrics.get(ACCURACY, float('nan')):.4f}; paste into "
        "an experiments/digits/*.yaml\n"
    )
    files.append(atomic_write_text(exp_dir / BEST_SNIPPET, header + yaml.safe_dump(snippet, sort_keys=False)))
    files.append(atomic_write_text(exp_dir / BEST_CONFIG, config_to_yaml(cfg)))
    experiment_mirror(tcfg).sync()
    published_files = published(tcfg, files)
    if tcfg.train_best if train_best is None else train_best:
        published_files.extend(train_best_model(cfg, tcfg))
    return TuneOutcome(
        exp_dir,
        int(len(table)),
        summary["best"],
        published_files,
        cache.repeats_answered,
        summary["trial_epochs_spent"],
        tcfg.experiment_location,
    )


def train_best_model(cfg: DigitsConfig, tcfg: TuneConfig) -> list[str]:
    """Train the best configuration for base.epochs with the normal workflow (exports, metrics, plot)."""
    from digits.training.runtime import limit_threads

    limit_threads(max(1, math.floor(tcfg.cpus_per_trial)))
    from digits.training.train import model_location
    from digits.workflow.run import train_and_export

    log.info("training the best configuration for %d epochs", cfg.epochs)
    train_and_export(cfg, verbose=0)
    folder = model_location(cfg)
    return [storage.join(folder, name) for name in storage.list_files(folder) if "/" not in name]
