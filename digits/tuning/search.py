"""The search of `digits tune`: an Optuna study (TPE by default) behind three small wrappers.

    ConcurrencyLimiter(BudgetSearcher(UniqueSearcher(TrialOptunaSearch)))

- `TrialOptunaSearch` is Ray's OptunaSearch with the study kept in the experiment
  (`<experiment>/optuna_study.log`, an Optuna journal; in a bucket, written locally and uploaded as trials
  end, `digits.tuning.mirror`), so Optuna's own tools work on it (`load_study`, then `optuna.visualization`).
  Optuna's intermediate values are the float signal the rungs decide on (the best
  validation accuracy so far, every epoch); its objective is the INT8 accuracy a finished trial measured. A
  trial stopped at a rung never measured INT8 and is told to Optuna as pruned, which TPE ranks by how far it got.
- The first trials are the warm-start points (`warm_start`): each architecture's known-good settings.
  TPE then needs only a couple of random proposals before it models (`n_startup_trials`).
- `UniqueSearcher` answers repeated configurations from a cache; `BudgetSearcher` keeps to the budget, and
  spends a remainder too small for a QAT trial on a PTQ one (`ptq_params`, fixed through `fix_params`).
"""

from __future__ import annotations

import functools
import tempfile
import warnings
from pathlib import Path
from typing import Any

from ray.tune.search.optuna import OptunaSearch

from digits.tuning.budget import BudgetSearcher, trial_epochs
from digits.tuning.config import TuneConfig
from digits.tuning.rungs import EPOCH, SIGNAL
from digits.tuning.space import DefineByRun, config_key, hyperparameters, is_asked, knob_spec
from digits.tuning.unique import CACHE_NAME, UniqueSearcher
from digits.tuning.warm_start import experiment_warm_start_points
from experiments import storage
from experiments.errors import UserError

STUDY_NAME = "optuna_study.log"
ACCURACY = "int8_accuracy"
SIZE = "int8_size_bytes"
RANDOM_AFTER_WARM_START = 2  # random proposals after the warm-start points, before TPE models


def objective(tcfg: TuneConfig) -> tuple[str | list[str], str | list[str]]:
    if tcfg.objective == "multi":
        return [ACCURACY, SIZE], ["max", "min"]
    return ACCURACY, "max"


class TrialOptunaSearch(OptunaSearch):
    """OptunaSearch for trials that report a float signal every epoch and INT8 metrics once, when finished."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reported_epochs: dict[str, set[int]] = {}
        self._fixed: dict[str, Any] | None = None

    def fix_params(self, params: dict[str, Any] | None) -> None:
        """Fix these parameters in the suggestions that follow (None: stop); Optuna samples the others."""
        self._fixed = params

    def suggest(self, trial_id: str) -> dict | None:
        import optuna

        study = self._ot_study
        if self._fixed and study is not None and trial_id not in self._ot_trials:
            waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
            if not waiting:  # warm-start points still queued come first
                study.enqueue_trial(self._fixed, skip_if_exists=False)
        return super().suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if isinstance(self.metric, list) or trial_id in self._completed_trials or SIGNAL not in result:
            return  # Optuna has no intermediate values for several objectives
        reported = self._reported_epochs.setdefault(trial_id, set())
        epoch = int(result.get(EPOCH, 0))
        if epoch not in reported:  # Tune passes the result a rung stopped on only with the completion
            reported.add(epoch)
            self._ot_trials[trial_id].report(float(result[SIGNAL]), epoch)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if result and trial_id in self._ot_trials:
            self.on_trial_result(trial_id, result)
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        finished = bool(result and all(result.get(m) is not None for m in metrics))
        super().on_trial_complete(trial_id, result if finished else None, error)  # no objective: pruned


def study_storage(experiment_dir: Path):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(Path(experiment_dir) / STUDY_NAME)))


def load_study(experiment: str | Path, name: str | None = None):
    """The Optuna study of a `digits tune` experiment, for Optuna's own tools (visualisations, dataframes): its
    folder (also one downloaded from a bucket), or its URI, read into memory (a copy: the bucket is not written)."""
    import optuna

    if not storage.is_uri(experiment):
        experiment = Path(experiment)
        return optuna.load_study(study_name=name or experiment.name, storage=study_storage(experiment))
    name = name or str(experiment).rstrip("/").rsplit("/", 1)[-1]
    journal = storage.join(experiment, STUDY_NAME)
    try:
        data = storage.read_bytes(journal)
    except FileNotFoundError:
        raise UserError(f"{journal}: not found (no digits tune experiment there)") from None
    in_memory = optuna.storages.InMemoryStorage()
    with tempfile.TemporaryDirectory(prefix="glyphray-study-") as scratch:  # Optuna reads a journal from a file
        (Path(scratch) / STUDY_NAME).write_bytes(data)
        optuna.copy_study(from_study_name=name, from_storage=study_storage(Path(scratch)), to_storage=in_memory)
    return optuna.load_study(study_name=name, storage=in_memory)


def build_sampler(tcfg: TuneConfig, warm_starts: int):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours to print
    if tcfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=tcfg.seed)
    startup = tcfg.n_startup_trials if tcfg.n_startup_trials is not None else warm_starts + RANDOM_AFTER_WARM_START
    # multivariate + group: TPE models knobs jointly, per branch of the conditional space; constant_liar keeps
    # concurrent trials apart.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # `group`: experimental since 2.8
        return optuna.samplers.TPESampler(
            seed=tcfg.seed, n_startup_trials=startup, multivariate=True, group=True, constant_liar=True
        )


def ptq_params(tcfg: TuneConfig) -> tuple[int, dict[str, Any]] | None:
    """(cost, parameters) of a PTQ-only trial when QAT is tuned and every architecture allows PTQ (else None):
    what the budget falls back to when only epochs_per_trial are left."""
    if tcfg.max_trial_epochs == tcfg.epochs_per_trial:
        return None
    params: dict[str, Any] = {}
    for architecture in tcfg.space.architectures:
        spec, name = knob_spec(tcfg.space, "quantization", architecture)
        if "ptq" not in spec:
            return None
        if is_asked(spec):
            params[name] = "ptq"
    return tcfg.epochs_per_trial, params


def build_searcher(tcfg: TuneConfig, points: list[dict[str, Any]] | None = None):
    """The searcher stack of the module docstring; `points` default to the warm-start points of the space."""
    from ray.tune.search import ConcurrencyLimiter

    if points is None:
        points = experiment_warm_start_points(tcfg)
    metric, mode = objective(tcfg)
    optuna_search = TrialOptunaSearch(
        space=DefineByRun(tcfg.space),
        metric=metric,
        mode=mode,
        sampler=build_sampler(tcfg, len(points)),
        points_to_evaluate=points or None,
        study_name=tcfg.name,
        storage=study_storage(tcfg.experiment_dir),
    )
    unique = UniqueSearcher(
        optuna_search,
        functools.partial(hyperparameters, space=tcfg.space),
        config_key,
        tcfg.experiment_dir / CACHE_NAME,
    )
    budget = BudgetSearcher(
        unique,
        tcfg.budget_epochs,
        tcfg.max_trial_epochs,
        functools.partial(trial_epochs, tcfg=tcfg),
        ptq_params(tcfg),
    )
    return ConcurrencyLimiter(budget, max_concurrent=tcfg.max_concurrent)
