"""experiments.analysis on hand-written run folders: Tune trials and lpasrn stages, table, plots, importances."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

import experiments
from experiments import plots
from experiments.analysis import analyze, pareto_front, ranked
from experiments.cli import build_parser
from experiments.errors import UserError

PNGS = {"learning_curves.png", "pareto_accuracy_vs_size.png", "param_importances.png", "parallel_coordinates.png"}


def write_trial(root: Path, index: int, params: dict, curve: list[float], size: float) -> None:
    folder = root / f"run_trial_{index:04d}_{index}"
    folder.mkdir(parents=True)
    (folder / "params.json").write_text(json.dumps(params))
    lines = [
        json.dumps(
            {
                "trial_id": f"t{index}",
                "training_iteration": step,
                "int8_accuracy": acc,
                "int8_size_bytes": size,
                "config": params,
            }
        )
        for step, acc in enumerate(curve, 1)
    ]
    (folder / "result.json").write_text("\n".join(lines) + "\n" + '{"trial_id": "cut')  # last line truncated


@pytest.fixture
def tune_run(tmp_path) -> Path:
    root = tmp_path / "exp"
    specs = [
        ("adam", 0.001, 0.0, [0.5, 0.8], 20000),
        ("sgd", 0.01, 2.0, [0.3, 0.6], 15000),
        ("adam", 0.003, 2.0, [0.7, 0.9], 30000),
        ("nadam", 0.0003, 0.0, [0.2], 10000),
        ("sgd", 0.002, 1.0, [0.4, 0.5], 25000),
    ]
    for index, (opt, lr, gamma, curve, size) in enumerate(specs):
        params = {"architecture": "digit_recognizer_v6", "optimizer": opt, "learning_rate": lr, "focal_gamma": gamma}
        write_trial(root, index, params, curve, size)
    return root


def test_load_gives_one_row_per_trial_with_config_and_last_metrics(tune_run):
    frame = experiments.load(tune_run)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 5
    row = frame.set_index("trial_id").loc["t2"]
    assert row["int8_accuracy"] == 0.9 and row["config/optimizer"] == "adam" and row["iterations"] == 2


def test_ranking_and_pareto_front(tune_run):
    rows = ranked(experiments.load(tune_run), "int8_accuracy", "max")
    assert list(rows["trial_id"]) == ["t2", "t0", "t1", "t4", "t3"]
    front = set(rows[pareto_front(rows)]["trial_id"])
    assert front == {"t2", "t0", "t1", "t3"}  # t4 (0.5 at 25 KB) is beaten by t0 (0.8 at 20 KB)


def test_analyze_writes_every_plot_and_a_ranked_table(tune_run, tmp_path):
    report = analyze(tune_run, out=tmp_path / "plots", top=3)
    assert {p.name for p in report.files} == PNGS and all(p.stat().st_size > 1000 for p in report.files)
    lines = report.table.splitlines()
    assert len(lines) == 4 and lines[1].split()[:2] == ["1", "t2"]
    assert set(report.importances) == {"optimizer", "learning_rate", "focal_gamma"}


def test_analyze_command(tune_run, tmp_path, capsys):
    from experiments.cli import run

    assert run(["analyze", str(tune_run), "--out", str(tmp_path / "cli"), "--metric", "int8_size_bytes"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split()[:2] == ["1", "t3"]  # smallest first: size defaults to min
    assert {p.name for p in (tmp_path / "cli").iterdir()} == PNGS


def test_lpasrn_stage_runs_are_read_too(tmp_path):
    for stage, name, accs in [(0, "pretrain", [0.1, 0.2]), (2, "lcofl", [0.3, 0.5, 0.4])]:
        folder = tmp_path / "run" / f"stage{stage}-{name}"
        folder.mkdir(parents=True)
        history = [{"epoch": i + 1, "val_word_acc": a} for i, a in enumerate(accs)]
        (folder / "metrics.json").write_text(
            json.dumps(
                {
                    "stage": stage,
                    "name": name,
                    "primary_metric": "val_loss",
                    "mode": "min",
                    "best": max(history, key=lambda h: h["val_word_acc"]),
                    "finished": True,
                    "history": history,
                }
            )
        )
    report = analyze(tmp_path / "run", out=tmp_path / "out")
    assert report.table.splitlines()[1].split()[:3] == ["1", "stage2-lcofl", "0.5"]
    assert [p.name for p in report.files] == ["learning_curves.png"]


def test_unknown_metric_and_missing_run_are_user_errors(tune_run, tmp_path):
    with pytest.raises(UserError, match="not reported"):
        analyze(tune_run, metric="nope", out=tmp_path)
    with pytest.raises(UserError, match="neither a Ray Tune experiment"):
        analyze(tmp_path, out=tmp_path / "x")


def test_cli_has_analyze():
    args = build_parser().parse_args(["analyze", "some/dir", "--top", "3"])
    assert args.top == 3 and args.run_dir == Path("some/dir")


# -- plots: every axis readable in its own units ------------------------------------------------------------
E_NOTATION = re.compile(r"\de[+-]?\d", re.IGNORECASE)
SWEEP = pd.DataFrame(
    {
        "trial_id": ["t0", "t1", "t2", "t3", "t4"],
        "config/optimizer": ["adam", "sgd", "adam", "nadam", "sgd"],
        "config/learning_rate": [0.001, 0.01, 0.003, 0.0003, 0.002],
        "config/focal_gamma": [0.0, 2.0, 2.0, 0.0, 1.0],
        "int8_accuracy": [0.8, 0.6, 0.9, 0.2, 0.5],
        "int8_size_bytes": [20000, 15000, 30000, 10000, 55000],
    }
)


@pytest.fixture
def drawn(monkeypatch, tmp_path):
    """Calls a plot function and gives back its figure, drawn (so formatter-made tick labels exist)."""
    figures = []

    def keep(plt, fig, path):
        fig.canvas.draw()
        figures.append(fig)
        return path

    monkeypatch.setattr(plots, "_save", keep)

    def draw(plot, *args):
        plot(*args, tmp_path / "plot.png")
        return figures[-1]

    return draw


def tick_labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]


def all_tick_labels(fig) -> list[str]:
    return [label for ax in fig.axes for label in tick_labels(ax)]


def test_parallel_coordinates_axes_carry_each_parameters_values(drawn):
    params = ["config/optimizer", "config/learning_rate", "config/focal_gamma"]
    labels = all_tick_labels(drawn(plots.parallel_coordinates, SWEEP, params, "int8_accuracy"))
    assert {"adam", "nadam", "sgd"} <= set(labels)  # categories by name
    assert {"0.0003", "0.001", "0.01"} <= set(labels)  # a log-spread learning rate, written out
    assert {"0", "1", "2"} <= set(labels) and {"0.2", "0.9"} <= set(labels)  # focal_gamma; the metric's own axis
    assert not {"low", "high"} & set(labels)
    assert not [label for label in labels if E_NOTATION.search(label)]


def test_parallel_coordinates_has_a_colour_bar_naming_the_metric_and_sizes_in_kb(drawn):
    fig = drawn(plots.parallel_coordinates, SWEEP, ["config/optimizer"], "int8_size_bytes")
    colour_bars = [ax for ax in fig.axes if ax.get_ylabel() == "int8_size_bytes"]
    assert len(colour_bars) == 1
    assert all(label.endswith(" KB") for label in tick_labels(colour_bars[0]))
    labels = all_tick_labels(fig)
    assert "53.7 KB" in labels and "9.8 KB" in labels
    assert not [label for label in labels if E_NOTATION.search(label)]


def test_learning_curves_of_a_size_metric_read_in_kb_at_whole_epochs(drawn):
    history = pd.DataFrame({"trial_id": ["a"] * 3, "step": [1, 2, 3], "int8_size_bytes": [40000, 45000, 52000]})
    ax = drawn(plots.learning_curves, history, ["a"], "int8_size_bytes").axes[0]
    sizes = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert sizes and all(label.endswith(" KB") for label in sizes)
    steps = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert {"1", "2", "3"} <= set(steps) and all(label.isdigit() for label in steps)  # no 1.5 epochs


def test_small_and_large_numbers_are_written_out():
    assert plots.format_value(0.0003) == "0.0003" and plots.format_value(1e-5) == "0.00001"
    assert plots.format_value(256.0) == "256" and plots.format_value(0.123456) == "0.123"
    assert plots.format_value(54_994, "int8_size_bytes") == "53.7 KB"
