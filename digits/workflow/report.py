"""Run reports: the training-history plot and metrics.json, both written atomically."""

from __future__ import annotations

import json
from pathlib import Path

from experiments.io import atomic_path, atomic_write_text


def plot_history(history: dict[str, list[float]], path: Path, title: str) -> Path:
    """Accuracy and loss per epoch (training and validation) side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("accuracy", "loss")):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            values = history.get(key, [])
            if values:
                axis.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=label)
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def write_metrics(metrics: dict, path: Path) -> Path:
    return atomic_write_text(path, json.dumps(metrics, indent=2, sort_keys=False) + "\n")
