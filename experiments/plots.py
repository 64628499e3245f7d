"""PNG plots of a run's analysis (matplotlib, Agg backend: no display needed on a cluster node)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from experiments.io import atomic_path


def _figure(width: float = 7.0, height: float = 4.5):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, plt.subplots(figsize=(width, height))


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def learning_curves(history: pd.DataFrame, trial_ids: list[str], metric: str, path: Path) -> Path:
    """`metric` per step of the top trials."""
    plt, (fig, ax) = _figure()
    for trial_id in trial_ids:
        rows = history[history["trial_id"] == trial_id] if len(history) else history
        if metric in rows.columns and len(rows):
            ax.plot(rows["step"], rows[metric], marker="o", label=str(trial_id))
    ax.set_xlabel("epoch / training iteration")
    ax.set_ylabel(metric)
    ax.set_title(f"learning curves of the top {len(trial_ids)} trials")
    if trial_ids:
        ax.legend(fontsize="small")
    return _save(plt, fig, path)


def pareto(trials: pd.DataFrame, front: pd.Series, path: Path) -> Path:
    """INT8 accuracy against INT8 size; the Pareto front joined by a line."""
    plt, (fig, ax) = _figure()
    size_kb = trials["int8_size_bytes"] / 1024
    ax.scatter(size_kb[~front], trials["int8_accuracy"][~front], c="tab:gray", label="dominated")
    best = trials[front].sort_values("int8_size_bytes")
    ax.plot(best["int8_size_bytes"] / 1024, best["int8_accuracy"], "o-", c="tab:red", label="Pareto front")
    ax.set_xlabel("INT8 TFLite size (KB)")
    ax.set_ylabel("INT8 accuracy")
    ax.set_title("accuracy vs size")
    ax.legend()
    return _save(plt, fig, path)


def importances(values: dict[str, float], metric: str, path: Path) -> Path:
    plt, (fig, ax) = _figure()
    names = list(values)[::-1]
    ax.barh(names, [values[n] for n in names], color="tab:blue")
    ax.set_xlabel(f"importance for {metric}")
    ax.set_title("parameter importances (Optuna)")
    return _save(plt, fig, path)


def _normalised(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Values mapped to [0, 1] (categories in sorted order); labels for the axis ends or categories."""
    values = column.dropna()
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        low, high = float(values.min()), float(values.max())
        span = high - low or 1.0
        return ((column.astype(float) - low) / span).to_numpy(), [f"{low:.3g}", f"{high:.3g}"]
    categories = sorted(values.astype(str).unique())
    positions = {c: i / max(1, len(categories) - 1) for i, c in enumerate(categories)}
    return np.array([positions.get(str(v), np.nan) if v is not None else np.nan for v in column]), categories


def parallel_coordinates(trials: pd.DataFrame, params: list[str], metric: str, path: Path) -> Path:
    """One line per trial across its parameters and the metric, coloured by the metric."""
    import matplotlib

    plt, (fig, ax) = _figure(max(7.0, 1.4 * (len(params) + 1)), 4.5)
    columns = params + [metric]
    matrix = np.column_stack([_normalised(trials[c])[0] for c in columns])
    scores = trials[metric].astype(float).to_numpy()
    span = (np.nanmax(scores) - np.nanmin(scores)) or 1.0
    cmap = matplotlib.colormaps["viridis"]
    for row, score in zip(matrix, scores):
        ax.plot(range(len(columns)), row, color=cmap((score - np.nanmin(scores)) / span), alpha=0.8)
    ax.set_xticks(range(len(columns)), [c.removeprefix("config/") for c in columns], rotation=30, ha="right")
    ax.set_yticks([0, 1], ["low", "high"])
    ax.set_title(f"parallel coordinates (colour: {metric})")
    return _save(plt, fig, path)
