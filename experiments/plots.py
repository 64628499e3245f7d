"""PNG plots of a run's analysis (matplotlib, Agg backend: no display needed on a cluster node).

Every axis carries values in its own units: sizes in KB, small numbers written out (no e-notation),
categories by name, parameters spanning orders of magnitude on a log scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.io import atomic_path

_MAX_EXACT_TICKS = 6  # up to this many distinct values, an axis labels each one (grid searches, few trials)
_PAD = 0.05  # fraction of an axis left free at either end so extreme values do not sit on the frame


def _figure(width: float = 7.0, height: float = 4.5, **subplots):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, plt.subplots(figsize=(width, height), **subplots)


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def _is_size(name: str) -> bool:
    return name.endswith("_bytes")


def format_value(value: float, name: str = "", digits: int = 3) -> str:
    """A number as a person writes it: `53.7 KB` for a `*_bytes` column, `0.0003` rather than `3e-04`."""
    value = float(value)
    if _is_size(name):
        return f"{value / 1024:,.{max(1, digits - 2)}f} KB"
    if value.is_integer():
        return f"{value:.0f}"
    return np.format_float_positional(value, precision=digits, unique=True, fractional=False, trim="-")


def _distinct_labels(values: list[float], name: str) -> list[str]:
    """Labels with just enough digits to tell the values apart (0.9001 and 0.9002 must not both read 0.9)."""
    for digits in range(3, 10):
        labels = [format_value(v, name, digits) for v in values]
        if len(set(labels)) == len(labels):
            break
    return labels


def _formatter(name: str):
    """Tick labels for a continuous axis: KB for sizes, else plain numbers (no offset, no e-notation)."""
    from matplotlib.ticker import FuncFormatter, ScalarFormatter

    if _is_size(name):
        return FuncFormatter(lambda value, _: format_value(value, name))
    plain = ScalarFormatter(useOffset=False)
    plain.set_scientific(False)
    return plain


def _units(axis, name: str) -> None:
    """Readable ticks on a continuous matplotlib axis (or colour bar): sizes at round numbers of KB."""
    from matplotlib.ticker import MaxNLocator

    class KilobyteLocator(MaxNLocator):
        def tick_values(self, vmin, vmax):
            return super().tick_values(vmin / 1024, vmax / 1024) * 1024

    if _is_size(name):
        axis.set_major_locator(KilobyteLocator())
    axis.set_major_formatter(_formatter(name))


def _axis_label(name: str) -> str:
    return name.removeprefix("config/")


def learning_curves(history: pd.DataFrame, trial_ids: list[str], metric: str, path: Path) -> Path:
    """`metric` per step of the top trials."""
    from matplotlib.ticker import MaxNLocator

    plt, (fig, ax) = _figure()
    for trial_id in trial_ids:
        rows = history[history["trial_id"] == trial_id] if len(history) else history
        if metric in rows.columns and len(rows):
            ax.plot(rows["step"], rows[metric], marker="o", label=str(trial_id))
    ax.set_xlabel("epoch / training iteration")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole epochs: no 1.5
    ax.set_ylabel(_axis_label(metric))
    _units(ax.yaxis, metric)
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
    _units(ax.xaxis, "")
    _units(ax.yaxis, "")
    ax.set_title("accuracy vs size")
    ax.legend()
    return _save(plt, fig, path)


def importances(values: dict[str, float], metric: str, path: Path) -> Path:
    plt, (fig, ax) = _figure()
    names = list(values)[::-1]
    ax.barh(names, [values[n] for n in names], color="tab:blue")
    ax.set_xlabel(f"importance for {metric} (fraction of the total)")
    _units(ax.xaxis, "")
    ax.set_title("parameter importances (Optuna)")
    return _save(plt, fig, path)


@dataclass
class _Axis:
    """One parallel-coordinates axis: where each trial sits on it (0..1) and what its ticks say."""

    positions: np.ndarray
    limits: tuple[float, float]  # the axis' range in the column's own units, padding included
    log: bool
    ticks: list[float]
    labels: list[str]


def _log_scaled(values: np.ndarray) -> bool:
    """Positive values spanning a decade or more and bunched at the low end (learning rates sampled log-uniformly,
    batch sizes 16..256) read better as orders of magnitude; evenly spread ones stay linear."""
    if not len(values) or values.min() <= 0 or values.max() / values.min() < 10:
        return False
    low, high = values.min(), values.max()
    return bool(np.median(values) < low + 0.25 * (high - low))


def _numeric_ticks(values: np.ndarray, log: bool) -> list[float]:
    from matplotlib.ticker import Locator, LogLocator, MaxNLocator

    distinct = np.unique(values)
    if len(distinct) <= _MAX_EXACT_TICKS:
        return [float(v) for v in distinct]
    low, high = float(distinct[0]), float(distinct[-1])
    locator: Locator
    if log:
        decades = np.log10(high) - np.log10(low)
        locator = LogLocator(subs=(1.0, 2.0, 5.0) if decades <= 2 else (1.0,), numticks=8)
    else:
        locator = MaxNLocator(5)
    ticks = [float(t) for t in locator.tick_values(low, high) if low <= t <= high]
    return ticks if len(ticks) >= 2 else [low, high]


def _parallel_axis(column: pd.Series) -> _Axis:
    """Numbers on a linear or log axis ticked at their values (or round ones); anything else as named categories."""
    values = column.dropna()
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        data = values.to_numpy(dtype=float)
        log = _log_scaled(data)
        forward, back = (np.log10, lambda v: 10.0**v) if log else (lambda v: v, lambda v: v)
        low, high = float(forward(data.min())), float(forward(data.max()))
        pad = _PAD * ((high - low) or 1.0)
        low, high = low - pad, high + pad
        positions = (forward(column.astype(float).to_numpy()) - low) / (high - low)
        ticks = _numeric_ticks(data, log)
        return _Axis(
            positions, (float(back(low)), float(back(high))), log, ticks, _distinct_labels(ticks, str(column.name))
        )
    categories = sorted(values.astype(str).unique())
    index = {c: i for i, c in enumerate(categories)}
    pad = _PAD * max(1, len(categories) - 1) + (0.5 if len(categories) == 1 else 0.0)
    low, high = -pad, len(categories) - 1 + pad
    raw = np.array(
        [index[str(v)] if v is not None and not (isinstance(v, float) and np.isnan(v)) else np.nan for v in column],
        dtype=float,
    )
    return _Axis((raw - low) / (high - low), (low, high), False, list(range(len(categories))), categories)


def parallel_coordinates_figure(trials: pd.DataFrame, params: list[str], metric: str):
    """One line per trial across its parameters and the metric, coloured by the metric (colour bar beside)."""
    import matplotlib
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.ticker import NullLocator

    plt, (fig, (ax, cax)) = _figure(
        max(7.0, 1.6 * (len(params) + 1) + 1.0), 4.8, ncols=2, gridspec_kw={"width_ratios": [40, 1]}
    )
    columns = params + [metric]
    axes = [_parallel_axis(trials[c]) for c in columns]
    scores = trials[metric].astype(float).to_numpy()
    norm = Normalize(np.nanmin(scores), np.nanmax(scores))
    cmap = matplotlib.colormaps["viridis"]
    matrix = np.column_stack([a.positions for a in axes])
    for row, score in zip(matrix, scores):
        ax.plot(range(len(columns)), row, color=cmap(norm(score)), alpha=0.8)
    ax.set_xlim(-0.05, len(columns) - 0.95)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_xticks(range(len(columns)), [_axis_label(c) for c in columns], rotation=30, ha="right")
    for i, spec in enumerate(axes):  # one vertical axis per column, in that column's units
        twin = ax.twinx()
        for side in ("left", "top", "bottom"):
            twin.spines[side].set_visible(False)
        twin.spines["right"].set_position(("data", i))
        if spec.log:
            twin.set_yscale("log")
        twin.set_ylim(*spec.limits)
        twin.set_yticks(spec.ticks, spec.labels, fontsize="small")
        twin.yaxis.set_minor_locator(NullLocator())
        for label in twin.get_yticklabels():  # legible where the label crosses the next segment's lines
            label.set_bbox({"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1})
    colour_bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax, label=_axis_label(metric))
    _units(colour_bar.ax.yaxis, metric)
    ax.set_title(f"parallel coordinates (colour: {_axis_label(metric)})")
    return plt, fig


def parallel_coordinates(trials: pd.DataFrame, params: list[str], metric: str, path: Path) -> Path:
    plt, fig = parallel_coordinates_figure(trials, params, metric)
    return _save(plt, fig, path)
