"""The budget of a `digits tune` experiment in trial-epochs: every epoch any trial trains, QAT fine-tuning included.

Budgets are what users compare searches by ("the same model with half the epochs"), so the count has to hold
all training. Trials report their running total as `trial_epochs`. `BudgetSearcher` starts a trial only when
what is spent, plus what the running trials may still spend, plus the most a new trial can cost, fits in the
budget; so an experiment never trains more than `budget_epochs`, and ends when no further trial fits.

When QAT is tuned, the most a trial can cost is epochs_per_trial plus its QAT fine-tuning; a remainder that
fits only a PTQ trial is not left unspent: the next suggestion is asked with PTQ fixed (`cheaper`, a partial
configuration the innermost searcher fixes, `TrialOptunaSearch.fix_params`), and started only if it fits.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ray.tune.search import Searcher

from digits.tuning.config import TuneConfig
from digits.tuning.space import hyperparameters
from digits.tuning.wrapped import WrappedSearcher

TRIAL_EPOCHS = "trial_epochs"


def trial_epochs(config: dict[str, Any], tcfg: TuneConfig) -> int:
    """The most a trial with this Tune config can cost: its epochs, plus QAT fine-tuning when it uses QAT."""
    quantization = hyperparameters(config, tcfg.space).get("quantization", "ptq")
    return tcfg.epochs_per_trial + (tcfg.qat_epochs if quantization == "qat" else 0)


class Budget:
    """Trial-epochs spent per trial, and the most each running trial may still spend."""

    def __init__(self, total: int | None, max_trial_epochs: int):
        self.total, self.max_trial_epochs = total, max_trial_epochs
        self.spent: dict[str, int] = {}
        self.running: dict[str, int] = {}  # trial id -> the most it can cost in all

    @property
    def used(self) -> int:
        return sum(self.spent.values())

    @property
    def reserved(self) -> int:
        return sum(max(0, cost - self.spent.get(trial_id, 0)) for trial_id, cost in self.running.items())

    def can_start(self, cost: int | None = None) -> bool:
        """Whether a trial costing `cost` (default: the most expensive kind) still fits beside what is spent and
        reserved."""
        cost = self.max_trial_epochs if cost is None else cost
        return self.total is None or self.used + self.reserved + cost <= self.total

    def start(self, trial_id: str, cost: int) -> None:
        self.running[trial_id] = cost

    def record(self, trial_id: str, epochs: Any) -> None:
        if isinstance(epochs, (int, float)) and not isinstance(epochs, bool):
            self.spent[trial_id] = max(self.spent.get(trial_id, 0), int(epochs))

    def finish(self, trial_id: str) -> None:
        self.running.pop(trial_id, None)


class BudgetSearcher(WrappedSearcher):
    """Wraps a Searcher: no trial starts that could overrun the budget; the search ends when none fits."""

    def __init__(
        self,
        searcher: Searcher,
        total: int | None,
        max_trial_epochs: int,
        cost: Callable[[dict], int],
        cheaper: tuple[int, dict[str, Any]] | None = None,
    ):
        """`cheaper`: (cost, parameters): fixing these parameters makes a trial cost at most that (PTQ only)."""
        super().__init__(searcher)
        self.budget = Budget(total, max_trial_epochs)
        self.cost = cost
        self.cheaper = cheaper

    def _innermost(self) -> Searcher:
        searcher = self.searcher
        while isinstance(inner := getattr(searcher, "searcher", None), Searcher):
            searcher = inner
        return searcher

    def _suggest_cheaper(self, trial_id: str) -> dict | str | None:
        """A suggestion with the `cheaper` parameters fixed, when only such a trial fits (else None)."""
        if self.cheaper is None or not self.budget.can_start(self.cheaper[0]):
            return None
        innermost = self._innermost()
        fix = getattr(innermost, "fix_params", None)
        if fix is None:
            return None
        fix(self.cheaper[1])
        try:
            config = self.searcher.suggest(trial_id)
        finally:
            fix(None)
        if isinstance(config, dict) and not self.budget.can_start(self.cost(config)):
            self.searcher.on_trial_complete(trial_id, None, error=True)  # never overrun: drop it unrun,
            self.cheaper = None  # and do not try again
            return None
        return config

    # Ray types Searcher.suggest `Optional[Dict]` but documents and handles Searcher.FINISHED (a str) as well
    def suggest(self, trial_id: str) -> dict | str | None:  # type: ignore[override]
        config: dict | str | None
        if self.budget.can_start():
            config = self.searcher.suggest(trial_id)
        else:
            config = self._suggest_cheaper(trial_id)
            if config is None:
                return None if self.budget.running else Searcher.FINISHED  # wait for running trials to free budget
        if isinstance(config, dict):
            self.budget.start(trial_id, self.cost(config))
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.budget.record(trial_id, result.get(TRIAL_EPOCHS))
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if result:
            self.budget.record(trial_id, result.get(TRIAL_EPOCHS))
        self.budget.finish(trial_id)
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    # Tune saves wrappers (objects with a `searcher`) by get_state and the innermost searcher by save.
    def get_state(self) -> dict:
        return {"budget": copy.deepcopy(self.budget.__dict__)}

    def set_state(self, state: dict) -> None:
        self.budget.__dict__.update(state["budget"])

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)
