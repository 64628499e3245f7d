"""Analysis of finished runs: a Ray Tune experiment or an lpasrn stage run, as tables and plots.

Reads only the files runs leave behind (Tune's `<trial>/params.json` + `result.json`, lpasrn's
`stage<k>-<name>/metrics.json`), so it needs neither Ray nor a cluster and works on a copied run folder.
`load(run_dir)` gives one row per trial (parameters as `config/<name>`, last reported metrics);
`analyze` adds the ranked table, learning curves, an accuracy-vs-size Pareto plot, parameter importances
(Optuna's evaluator on a study rebuilt from the rows) and a parallel-coordinates plot.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments.errors import UserError

log = logging.getLogger(__name__)

CONFIG_PREFIX = "config/"
ACCURACY_METRICS = ("int8_accuracy", "val_accuracy", "accuracy", "val_word_acc")
SIZE_METRIC = "int8_size_bytes"
_STAGE_DIR = re.compile(r"^stage(\d+)-(.+)$")


@dataclass
class RunData:
    """One run: trials (one row each), their per-step history, and the metric it is judged by."""

    kind: str
    trials: pd.DataFrame
    history: pd.DataFrame
    metric: str | None = None
    mode: str = "max"
    extra: dict[str, Any] = field(default_factory=dict)


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}{key}/", item, out)
    else:
        out[prefix[:-1]] = value


def _read_json_lines(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a killed driver: the earlier ones still count
                log.warning("%s: skipped a truncated line", path)
    return rows


def _scalars(row: dict) -> dict[str, Any]:
    return {
        key: value
        for key, value in row.items()
        if key != "config" and (value is None or isinstance(value, (int, float, str, bool)))
    }


def _read_tune(run_dir: Path) -> RunData | None:
    trial_dirs = sorted(p.parent for p in run_dir.glob("*/result.json"))
    if not trial_dirs:
        return None
    rows, history = [], []
    for trial_dir in trial_dirs:
        results = _read_json_lines(trial_dir / "result.json")
        params_path = trial_dir / "params.json"
        params = json.loads(params_path.read_text(encoding="utf-8")) if params_path.is_file() else {}
        trial_id = results[-1].get("trial_id") if results else trial_dir.name
        config: dict[str, Any] = {}
        _flatten(CONFIG_PREFIX, params, config)
        status = "ERROR" if (trial_dir / "error.txt").exists() else ("TERMINATED" if results else "PENDING")
        row = {
            "trial_id": trial_id or trial_dir.name,
            "trial_dir": trial_dir.name,
            "status": status,
            "iterations": len(results),
            **config,
        }
        if results:
            row.update(_scalars(results[-1]))
            row["trial_id"] = trial_id or trial_dir.name
        rows.append(row)
        for step, result in enumerate(results, 1):
            history.append(
                {"trial_id": row["trial_id"], "step": result.get("training_iteration", step), **_scalars(result)}
            )
    trials = pd.DataFrame(rows)
    metric = next((m for m in ACCURACY_METRICS if m in trials.columns), None)
    return RunData("tune", trials, pd.DataFrame(history), metric, "max")


def _read_stages(run_dir: Path) -> RunData | None:
    stage_files = sorted(run_dir.glob("stage*-*/metrics.json"))
    rows: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    metric = None
    for path in stage_files:
        match = _STAGE_DIR.match(path.parent.name)
        if not match:
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        metric = metric or data.get("primary_metric")
        trial_id = path.parent.name
        best = data.get("best") or {}
        rows.append(
            {
                "trial_id": trial_id,
                "trial_dir": trial_id,
                "stage": int(match.group(1)),
                "name": data.get("name", match.group(2)),
                "status": "TERMINATED" if data.get("finished") else "RUNNING",
                "iterations": len(data.get("history", [])),
                **_scalars(best),
            }
        )
        for entry in data.get("history", []):
            history.append({"trial_id": trial_id, "step": entry.get("epoch", len(history) + 1), **_scalars(entry)})
    if not rows:
        return None
    trials = pd.DataFrame(rows).sort_values("stage")
    # Stages have different primary metrics (loss for pretraining, word accuracy later): rank all by accuracy.
    metric = next((m for m in ACCURACY_METRICS if m in trials.columns), metric)
    return RunData("lpasrn", trials, pd.DataFrame(history), metric, default_mode(metric or ""))


def read_run(run_dir: str | os.PathLike) -> RunData:
    """A Tune experiment folder or an lpasrn run folder; anything else is a user error."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: run folder not found")
    data = _read_tune(run_dir) or _read_stages(run_dir)
    if data is None:
        raise UserError(
            f"{run_dir}: neither a Ray Tune experiment (<trial>/result.json) nor an lpasrn run "
            "(stage<k>-<name>/metrics.json)"
        )
    return data


def load(run_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per trial (or lpasrn stage): `config/<param>` columns and the last reported metrics."""
    return read_run(run_dir).trials


def default_mode(metric: str) -> str:
    return "min" if any(word in metric for word in ("loss", "size", "latency", "time")) else "max"


def ranked(trials: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    """Trials with a value of `metric`, best first (ties: smaller INT8 model first when known)."""
    if metric not in trials.columns:
        known = ", ".join(c for c in trials.columns if pd.api.types.is_numeric_dtype(trials[c]))
        raise UserError(f"metric {metric!r} is not reported by this run; numeric columns: {known}")
    rows = trials[trials[metric].notna()]
    keys, ascending = [metric], [mode == "min"]
    if SIZE_METRIC in rows.columns and metric != SIZE_METRIC:
        keys, ascending = keys + [SIZE_METRIC], ascending + [True]
    return rows.sort_values(keys, ascending=ascending, kind="stable").reset_index(drop=True)


def pareto_front(trials: pd.DataFrame, accuracy: str = "int8_accuracy", size: str = SIZE_METRIC) -> pd.Series:
    """True for trials no other trial beats on both accuracy (higher) and size (smaller)."""
    values = trials[[accuracy, size]].to_numpy(dtype=float)
    front = []
    for acc, sz in values:
        dominated = np.any((values[:, 0] >= acc) & (values[:, 1] <= sz) & ((values[:, 0] > acc) | (values[:, 1] < sz)))
        front.append(bool(not dominated and not math.isnan(acc) and not math.isnan(sz)))
    return pd.Series(front, index=trials.index)


def param_columns(trials: pd.DataFrame) -> list[str]:
    """`config/*` columns that vary between trials (constants explain nothing)."""
    return [c for c in trials.columns if c.startswith(CONFIG_PREFIX) and trials[c].dropna().astype(str).nunique() > 1]


def param_importances(trials: pd.DataFrame, metric: str, mode: str) -> dict[str, float]:
    """Optuna's importance evaluator on a study rebuilt from the trials (conditional parameters included
    only where every trial has them, as Optuna requires)."""
    import optuna
    from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution

    rows = trials[trials[metric].notna()]
    columns = param_columns(rows)
    if len(rows) < 2 or not columns:
        return {}
    distributions: dict[str, BaseDistribution] = {}
    for column in columns:
        values = rows[column].dropna()
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            low, high = float(values.min()), float(values.max())
            distributions[column] = FloatDistribution(low, high, log=low > 0 and high / low >= 100)
        else:
            distributions[column] = CategoricalDistribution(sorted(values.astype(str).unique()))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    for _, row in rows.iterrows():
        params, dists = {}, {}
        for column, dist in distributions.items():
            value = row[column]
            if value is None or isinstance(value, float) and math.isnan(value):
                continue
            params[column] = str(value) if isinstance(dist, CategoricalDistribution) else float(value)
            dists[column] = dist
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=float(row[metric])))
    try:
        importances = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError) as err:  # e.g. no parameter shared by all trials
        log.warning("parameter importances unavailable: %s", err)
        return {}
    return {name.removeprefix(CONFIG_PREFIX): float(value) for name, value in importances.items()}


@dataclass
class AnalysisReport:
    table: str
    files: list[Path]
    importances: dict[str, float]


def format_ranked_table(rows: pd.DataFrame, metric: str, top: int) -> str:
    """Rank, trial, metric, INT8 size and the varying parameters, as aligned text."""
    columns = (
        ["trial_id", metric]
        + ([SIZE_METRIC] if SIZE_METRIC in rows.columns and metric != SIZE_METRIC else [])
        + param_columns(rows)
    )
    view = rows[columns].head(top).copy()
    view.columns = [c.removeprefix(CONFIG_PREFIX) for c in columns]
    view.insert(0, "rank", range(1, len(view) + 1))
    return view.to_string(index=False, float_format=lambda v: f"{v:.4g}")


def analyze(
    run_dir: str | Path, metric: str | None = None, mode: str | None = None, out: str | Path | None = None, top: int = 5
) -> AnalysisReport:
    """Ranked table of `run_dir` and its PNG plots in `out` (default `<run_dir>/analysis`)."""
    from experiments import plots

    data = read_run(run_dir)
    metric = metric or data.metric
    if metric is None:
        raise UserError(f"{run_dir}: no accuracy metric found; name one with --metric")
    mode = mode or (data.mode if metric == data.metric else default_mode(metric))
    rows = ranked(data.trials, metric, mode)
    out_dir = Path(out) if out is not None else Path(run_dir) / "analysis"
    files = [
        plots.learning_curves(data.history, list(rows["trial_id"].head(top)), metric, out_dir / "learning_curves.png")
    ]
    if {"int8_accuracy", SIZE_METRIC} <= set(rows.columns):
        files.append(plots.pareto(rows, pareto_front(rows), out_dir / "pareto_accuracy_vs_size.png"))
    importances = param_importances(rows, metric, mode)
    if importances:
        files.append(plots.importances(importances, metric, out_dir / "param_importances.png"))
    params = param_columns(rows)
    if params:
        files.append(plots.parallel_coordinates(rows, params, metric, out_dir / "parallel_coordinates.png"))
    return AnalysisReport(format_ranked_table(rows, metric, top), files, importances)
