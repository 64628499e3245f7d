"""`digits tune`: build the Ray Tune experiment (OptunaSearch + ASHA), run or resume it, write its outputs.

The experiment lives in `<storage_path>/<name>/`: Tune's own state (so `--resume` continues it), the result
cache of unique configurations, and the outputs: best_hyperparameters.json/.yaml, detailed_tuning_results.csv
and .parquet, and best_model/ (the best configuration trained fully through the normal workflow).
"""
from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from digits.tuning.config import TuneConfig
from digits.tuning.outputs import TuneOutcome, write_outputs
from digits.tuning.space import DefineByRun, config_key, hyperparameters
from digits.tuning.trainable import TrialSettings, run_trial
from digits.tuning.unique import CACHE_NAME, UniqueSearcher
from experiments.config import save_resolved_config
from experiments.errors import UserError
from experiments.io import ensure_folder

log = logging.getLogger(__name__)

TUNE_SIGINT_ENV = "TUNE_DISABLE_SIGINT_HANDLER"  # read by Tune when fit() starts
ACCURACY = "int8_accuracy"
SIZE = "int8_size_bytes"


def _objective(tcfg: TuneConfig) -> tuple[str | list[str], str | list[str]]:
    if tcfg.objective == "multi":
        return [ACCURACY, SIZE], ["max", "min"]
    return ACCURACY, "max"


def build_searcher(tcfg: TuneConfig):
    """OptunaSearch (TPE, define-by-run) behind the unique-configuration cache, limited to max_concurrent."""
    import optuna
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    metric, mode = _objective(tcfg)
    sampler = optuna.samplers.TPESampler(seed=tcfg.seed, multivariate=True, group=True,
                                         n_startup_trials=min(10, max(2, tcfg.num_samples // 3)))
    optuna_search = OptunaSearch(space=DefineByRun(tcfg.space), metric=metric, mode=mode, sampler=sampler)
    unique = UniqueSearcher(optuna_search, functools.partial(hyperparameters, space=tcfg.space), config_key,
                            tcfg.experiment_dir / CACHE_NAME)
    return ConcurrencyLimiter(unique, max_concurrent=tcfg.max_concurrent)


def build_trainable(tcfg: TuneConfig):
    from ray import tune

    settings = TrialSettings(base=tcfg.base, space=tcfg.space, epochs=tcfg.epochs_per_trial,
                             threads=max(1, math.floor(tcfg.cpus_per_trial)), eval_images=tcfg.eval_images,
                             experiment_dir=str(tcfg.experiment_dir))
    resources = {"cpu": tcfg.cpus_per_trial, "gpu": tcfg.gpus_per_trial}
    return tune.with_resources(tune.with_parameters(run_trial, settings=settings), resources)


def build_tuner(tcfg: TuneConfig):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    scheduler = ASHAScheduler(time_attr="training_iteration", metric=ACCURACY, mode="max",
                              max_t=tcfg.epochs_per_trial, grace_period=tcfg.grace_period,
                              reduction_factor=tcfg.reduction_factor)
    return tune.Tuner(build_trainable(tcfg),
                      tune_config=tune.TuneConfig(search_alg=build_searcher(tcfg), scheduler=scheduler,
                                                  num_samples=tcfg.num_samples),
                      run_config=tune.RunConfig(name=tcfg.name, storage_path=str(tcfg.experiment_dir.parent),
                                                failure_config=tune.FailureConfig(max_failures=tcfg.max_failures),
                                                verbose=1))


def _check_data(tcfg: TuneConfig) -> None:
    from digits.architectures import resolve_name
    from digits.preflight import check_run

    for name in tcfg.space.architectures:
        resolve_name(name)
    try:
        check_run(tcfg.base)
    except UserError as err:
        raise UserError(f"tune config `base` section: {err}") from None
    if "qat" in tcfg.space.quantization:
        from digits.qat import qat_available

        qat_available()


def _init_ray() -> None:
    """Join the cluster in RAY_ADDRESS (set by `ray job submit`), else start a private local Ray; a failure is one
    line (see `experiments.ray_connect`)."""
    from experiments.ray_connect import connect

    connect(log_to_driver=False)


def _unfinished_trials(exp_dir: Path) -> int:
    """Trials the saved experiment state still lists as pending, running or paused."""
    from ray.tune import ExperimentAnalysis

    trials = ExperimentAnalysis(str(exp_dir)).trials
    return sum(trial.status in ("PENDING", "RUNNING", "PAUSED") for trial in trials)


@contextlib.contextmanager
def _ctrl_c_recorded() -> Iterator[threading.Event]:
    """Ctrl-C still stops Tune gracefully (state saved), and we learn that it happened.

    Tune's own SIGINT handler says nothing afterwards, and a Ctrl-C that falls between one trial's end and the
    next one's start leaves no unfinished trial to tell by. So SIGINT is ours while Tune runs: it records the
    stop and passes it on as SIGUSR1, which Tune handles exactly like its own Ctrl-C.
    """
    interrupted = threading.Event()

    def stop_tune(signum, frame) -> None:
        interrupted.set()
        os.kill(os.getpid(), signal.SIGUSR1)

    saved_env = os.environ.get(TUNE_SIGINT_ENV)
    os.environ[TUNE_SIGINT_ENV] = "1"
    previous = signal.signal(signal.SIGINT, stop_tune)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)
        if saved_env is None:
            os.environ.pop(TUNE_SIGINT_ENV, None)
        else:
            os.environ[TUNE_SIGINT_ENV] = saved_env


def run_tune(tcfg: TuneConfig, resume: bool = False) -> TuneOutcome:
    """Run (or `resume`) the experiment, then write its outputs; returns where they are and the best trial."""
    from ray import tune

    _check_data(tcfg)
    exp_dir = tcfg.experiment_dir
    if resume:
        if not tune.Tuner.can_restore(str(exp_dir)):
            raise UserError(f"{exp_dir}: no Tune experiment to resume (start it without --resume)")
        _init_ray()
        tuner = tune.Tuner.restore(str(exp_dir), trainable=build_trainable(tcfg), resume_unfinished=True,
                                   resume_errored=True)
    else:
        if tune.Tuner.can_restore(str(exp_dir)):
            raise UserError(f"{exp_dir}: an experiment with this name exists; continue it with --resume or pick "
                            "another --name")
        ensure_folder(exp_dir)
        save_resolved_config(tcfg, exp_dir)
        _init_ray()
        tuner = build_tuner(tcfg)
    with _ctrl_c_recorded() as ctrl_c:
        tuner.fit()
    if ctrl_c.is_set() or _unfinished_trials(exp_dir):  # Tune saved its state and returned early
        print(f"interrupted: continue with `digits tune --config ... --name {tcfg.name} --resume`", file=sys.stderr)
        raise KeyboardInterrupt
    import ray

    ray.shutdown()  # free the cluster (and stop depending on it) before the final training
    return write_outputs(tcfg)
