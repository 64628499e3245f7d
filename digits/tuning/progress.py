"""What `digits tune` shows and keeps while it runs: one line per trial that ends, and the results table.

Tune's own status table (every 30 s, whether or not anything changed) is switched off; `TrialLines` prints
one line when a trial finishes, stops early or fails: its objective, its knobs, the best so far and the budget
spent. `ResultsAsTrialsFinish` rewrites detailed_tuning_results.csv/.parquet at the same moments, so after a
Ctrl-C the file already holds every trial that ended (in a bucket, uploaded then with the driver's other files).
"""

from __future__ import annotations

import logging
from typing import Any

from ray.tune import Callback

from digits.tuning.budget import TRIAL_EPOCHS
from digits.tuning.config import TuneConfig
from digits.tuning.mirror import experiment_mirror
from digits.tuning.outputs import ACCURACY, trials_frame, write_results
from digits.tuning.rungs import EPOCH, SIGNAL
from digits.tuning.space import KNOBS, hyperparameters
from experiments.errors import UserError

log = logging.getLogger(__name__)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def knob_summary(values: dict[str, Any]) -> str:
    short = {
        "learning_rate": "lr",
        "batch_size": "batch",
        "focal_gamma": "gamma",
        "focal_alpha": "alpha",
        "label_smoothing": "smoothing",
    }
    parts = []
    for key in ("architecture", *KNOBS):
        if key not in values:
            continue
        value = values[key]
        text = f"{value:.3g}" if isinstance(value, float) else str(value)
        parts.append(text if key in ("architecture", "optimizer", "quantization") else f"{short.get(key, key)} {text}")
    return " ".join(parts)


ENDED = ("TERMINATED", "ERROR")


def ended_trials(trials: list, trial: Any) -> list:
    """The trials that have ended, `trial` included (Tune calls back before it marks the trial TERMINATED)."""
    return [t for t in trials if t.status in ENDED or t is trial]


def trial_line(trial: Any, trials: list, tcfg: TuneConfig) -> str:
    """`[n ended | spent/budget trial-epochs] <id> <outcome>: <objective> | <knobs> | best INT8 so far`."""
    result = trial.last_result or {}
    ended = len(ended_trials(trials, trial))
    spent = sum(_number((t.last_result or {}).get(TRIAL_EPOCHS)) or 0 for t in trials)
    budget = f"{spent:.0f}/{tcfg.budget_epochs}" if tcfg.budget_epochs else f"{spent:.0f}"
    accuracy = _number(result.get(ACCURACY))
    if trial.status == "ERROR":
        what = "failed (see its error.txt)"
    elif accuracy is not None:
        what = (
            f"finished: INT8 {accuracy:.4f}, val {_number(result.get(SIGNAL)) or 0:.4f}, "
            f"{result.get(TRIAL_EPOCHS)} trial-epochs"
        )
    else:
        what = f"stopped at epoch {result.get(EPOCH, 0)}: best val {_number(result.get(SIGNAL)) or 0:.4f}"
    scores = [_number((t.last_result or {}).get(ACCURACY)) for t in trials]
    best = max((s for s in scores if s is not None), default=None)
    best_text = f" | best INT8 {best:.4f}" if best is not None else ""
    knobs = knob_summary(hyperparameters(trial.config or {}, tcfg.space))
    return f"[{ended} ended | {budget} trial-epochs] {trial.trial_id} {what} | {knobs}{best_text}"


class TrialLines(Callback):
    """One line per trial that ends (see the module docstring)."""

    def __init__(self, tcfg: TuneConfig):
        self.tcfg = tcfg

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info) -> None:
        print(trial_line(trial, trials, self.tcfg), flush=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info) -> None:
        print(trial_line(trial, trials, self.tcfg), flush=True)


class ResultsAsTrialsFinish(Callback):
    """detailed_tuning_results.csv/.parquet rewritten with every trial that has ended."""

    def __init__(self, tcfg: TuneConfig):
        self.tcfg = tcfg

    def _write(self, trials: list, trial: Any) -> None:
        ended = ended_trials(trials, trial)
        try:
            write_results(
                trials_frame(ended, {trial.trial_id: "ERROR" if trial.status == "ERROR" else "TERMINATED"}), self.tcfg
            )
            experiment_mirror(self.tcfg).sync()  # in a bucket: the table, the journal, the cache, the rungs
        except (OSError, UserError) as err:  # the final outputs will try again; a full disk must not kill the search
            log.warning("cannot write the results table: %s", err)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info) -> None:
        self._write(trials, trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info) -> None:
        self._write(trials, trial)
