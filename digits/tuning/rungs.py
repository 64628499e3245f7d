"""Early stopping of `digits tune` trials: asynchronous successive halving on an informative, cheap signal.

Which signal: the best float validation accuracy so far. It costs nothing (Keras computes it every epoch),
the same for every trial whatever its loss (validation *loss* is not comparable between focal loss and
smoothed cross-entropy), and it rises early; the INT8 model, whose conversion is the expensive part, is
scored only at the end of a trial, where it decides the ranking.

Where to cut: at epochs grace_period * reduction_factor^k a trial is compared with the others that reached
the same epoch, as ASHA does, and stopped only if it trails the rung's top 1/reduction_factor by more than
`margin_se` standard errors of a difference of two accuracies measured on `n` validation images,
sqrt(2 p (1 - p) / n). So a rung where every configuration is still near chance, or where trials differ by
an image or two, stops nobody: a rung cuts only where the signal separates configurations.

`Rungs` is the rule (no Ray); `RungScheduler` hands it Tune's results. Records are kept in a JSON file in
the experiment, so a resumed experiment compares new trials with the ones before the interruption.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from experiments.io import atomic_write_text

EPOCH = "epoch"
SIGNAL = "best_val_accuracy"
VAL_IMAGES = "val_images"
RUNGS_NAME = "rungs.json"


class Rungs:
    """The records at each rung and the stop rule (see the module docstring)."""

    def __init__(
        self, grace_period: int, reduction_factor: int, max_epochs: int, margin_se: float, path: Path | None = None
    ):
        self.reduction_factor, self.margin_se = reduction_factor, margin_se
        self.milestones: list[int] = []
        milestone = grace_period
        while milestone < max_epochs:
            self.milestones.append(milestone)
            milestone *= reduction_factor
        self.path = Path(path) if path is not None else None
        self._recorded: dict[int, dict[str, float]] | None = None

    @property
    def recorded(self) -> dict[int, dict[str, float]]:
        """milestone -> {trial id: signal at that milestone}; read from the file the first time it is needed."""
        if self._recorded is None:
            stored = json.loads(self.path.read_text(encoding="utf-8")) if self.path and self.path.is_file() else {}
            self._recorded = {m: dict(stored.get(str(m), {})) for m in self.milestones}
        return self._recorded

    def cutoff(self, values: list[float]) -> float:
        """The value the top 1/reduction_factor of a rung reach."""
        return float(np.percentile(values, (1 - 1 / self.reduction_factor) * 100))

    def margin(self, cutoff: float, images: int) -> float:
        """`margin_se` standard errors of a difference of two accuracies near `cutoff` on `images` images."""
        if images <= 0:
            return 0.0
        p = min(max(cutoff, 0.5 / images), 1 - 0.5 / images)
        return self.margin_se * math.sqrt(2 * p * (1 - p) / images)

    def decide(self, trial_id: str, epoch: int, value: float, images: int) -> bool:
        """Record `value` at the highest rung `epoch` reached (once per rung); False: stop the trial."""
        reached = [m for m in self.milestones if m <= epoch]
        if not reached or trial_id in self.recorded[reached[-1]]:
            return True
        rung = self.recorded[reached[-1]]
        rung[trial_id] = float(value)
        self._save()
        cutoff = self.cutoff(list(rung.values()))
        return not value < cutoff - self.margin(cutoff, images)

    def _save(self) -> None:
        if self.path is not None:
            payload = {str(m): values for m, values in self.recorded.items()}
            atomic_write_text(self.path, json.dumps(payload, indent=1, sort_keys=True))


class RungScheduler(FIFOScheduler):
    """Tune's side of `Rungs`: each result with an epoch and the signal may stop its trial."""

    def __init__(self, rungs: Rungs):
        super().__init__()
        self.rungs = rungs

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if EPOCH not in result or SIGNAL not in result:
            return TrialScheduler.CONTINUE
        keep = self.rungs.decide(
            trial.trial_id, int(result[EPOCH]), float(result[SIGNAL]), int(result.get(VAL_IMAGES, 0))
        )
        return TrialScheduler.CONTINUE if keep else TrialScheduler.STOP

    def debug_string(self) -> str:
        return f"Rungs at epochs {self.rungs.milestones}, cut margin {self.rungs.margin_se} standard errors"
