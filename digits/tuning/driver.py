"""`digits tune`: build the Ray Tune experiment, run or resume it, write its outputs.

The Ray parts are few: `search.build_searcher` (Optuna behind the budget, uniqueness and concurrency
wrappers), `rungs.RungScheduler` (early stopping on the float signal), `trainable.run_trial` in reused
actors, checkpoints kept one per trial, and the `progress` callbacks instead of Tune's status table.
The experiment lives in `<storage_path>/<name>/`: Tune's own state (so `--resume` continues it, interrupted
trials from their last epoch), the Optuna study, the result cache of unique configurations, and the outputs:
best_hyperparameters.json/.yaml, detailed_tuning_results.csv and .parquet (rewritten as trials end), and
best_model/ (the best configuration trained fully through the normal workflow). `<storage_path>` may be a bucket
(s3://, gs://): see `digits.tuning.mirror`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from digits.tuning.config import TuneConfig
from digits.tuning.mirror import open_experiment
from digits.tuning.outputs import TuneOutcome, write_outputs
from digits.tuning.trainable import TrialSettings, run_trial
from experiments import storage
from experiments.config import save_resolved_config
from experiments.errors import UserError

log = logging.getLogger(__name__)

TUNE_SIGINT_ENV = "TUNE_DISABLE_SIGINT_HANDLER"  # read by Tune when fit() starts
# The objective (INT8) is measured once, when a trial finishes; the epochs before report the float signal only.
TUNE_STRICT_METRICS_ENV = "TUNE_DISABLE_STRICT_METRIC_CHECKING"
# One checkpoint kept per trial makes Tune snapshot its (small, local) state at every checkpoint, which keeps a
# resumed experiment consistent with the kept checkpoints; Tune warns about that each time.
TUNE_SNAPSHOT_WARNING_ENV = "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S"


def build_trainable(tcfg: TuneConfig):
    from ray import tune

    settings = TrialSettings(
        base=tcfg.base,
        space=tcfg.space,
        epochs=tcfg.epochs_per_trial,
        threads=max(1, math.floor(tcfg.cpus_per_trial)),
        eval_images=tcfg.eval_images,
        experiment_location=tcfg.experiment_location,
    )
    resources = {"cpu": tcfg.cpus_per_trial, "gpu": tcfg.gpus_per_trial}
    return tune.with_resources(tune.with_parameters(run_trial, settings=settings), resources)


def build_rungs(tcfg: TuneConfig):
    from digits.tuning.rungs import RUNGS_NAME, Rungs

    return Rungs(
        tcfg.grace_period,
        tcfg.reduction_factor,
        tcfg.epochs_per_trial,
        tcfg.cut_margin,
        tcfg.experiment_dir / RUNGS_NAME,
    )


def build_tuner(tcfg: TuneConfig, points: list[dict] | None = None):
    from ray import tune

    from digits.tuning.progress import ResultsAsTrialsFinish, TrialLines
    from digits.tuning.rungs import RungScheduler
    from digits.tuning.search import build_searcher

    location = tcfg.experiment_location
    storage_path = storage.join(tcfg.storage_path) if storage.is_uri(location) else str(Path(location).parent)
    run_config = tune.RunConfig(
        name=tcfg.name,
        storage_path=storage_path,
        failure_config=tune.FailureConfig(max_failures=tcfg.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=[TrialLines(tcfg), ResultsAsTrialsFinish(tcfg)],
        verbose=0,
    )
    tune_config = tune.TuneConfig(
        search_alg=build_searcher(tcfg, points),
        scheduler=RungScheduler(build_rungs(tcfg)),
        num_samples=most_trials(tcfg),
        reuse_actors=True,
    )
    return tune.Tuner(build_trainable(tcfg), tune_config=tune_config, run_config=run_config)


def most_trials(tcfg: TuneConfig) -> int:
    """num_samples, and no more trials than the budget could pay for at the first rung (each costs that much)."""
    bounds = [tcfg.num_samples] if tcfg.num_samples else []
    if tcfg.budget_epochs:
        bounds.append(max(1, tcfg.budget_epochs // min(tcfg.grace_period, tcfg.epochs_per_trial)))
    return min(bounds)


def describe(tcfg: TuneConfig, warm_starts: int) -> str:
    """The experiment in one line, printed before the per-trial lines."""
    budget = [f"{tcfg.budget_epochs} trial-epochs"] if tcfg.budget_epochs else []
    budget += [f"{tcfg.num_samples} trials"] if tcfg.num_samples else []
    rungs = build_rungs(tcfg).milestones
    cuts = f"rungs at epoch {', '.join(map(str, rungs))}" if rungs else "no rungs"
    return (
        f"digits tune {tcfg.name}: up to {' or '.join(budget)}, {tcfg.max_concurrent} at a time; "
        f"{warm_starts} warm-start point(s), then {tcfg.sampler.upper()}; {tcfg.epochs_per_trial} epochs per "
        f"trial ({cuts}), INT8 scored when a trial finishes"
    )


def _check_data(tcfg: TuneConfig) -> None:
    from digits.architectures import resolve_name
    from digits.workflow.preflight import check_run

    for name in tcfg.space.architectures:
        resolve_name(name)
    try:
        check_run(tcfg.base)
    except UserError as err:
        raise UserError(f"tune config `base` section: {err}") from None
    if "qat" in tcfg.space.quantization:
        from digits.export.qat import qat_available

        qat_available()


def _init_ray() -> None:
    """Join the cluster in RAY_ADDRESS (set by `ray job submit`), else start a private local Ray; a failure is one
    line (see `experiments.ray_connect`)."""
    from experiments.ray_connect import connect

    connect(log_to_driver=False)


def _unfinished_trials(location: str) -> int:
    """Trials the saved experiment state (in a folder or a bucket) still lists as pending, running or paused."""
    from ray.tune import ExperimentAnalysis

    trials = ExperimentAnalysis(location).trials
    return sum(trial.status in ("PENDING", "RUNNING", "PAUSED") for trial in trials)


@contextlib.contextmanager
def _environment(**variables: str) -> Iterator[None]:
    """Environment variables set for the duration of the block (Tune reads these while it runs)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


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

    previous = signal.signal(signal.SIGINT, stop_tune)
    try:
        with _environment(**{TUNE_SIGINT_ENV: "1"}):
            yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def _new_tuner(tcfg: TuneConfig):
    save_resolved_config(tcfg, tcfg.experiment_dir)
    from digits.tuning.warm_start import experiment_warm_start_points

    points = experiment_warm_start_points(tcfg)
    _init_ray()
    tuner = build_tuner(tcfg, points)
    print(describe(tcfg, len(points)), flush=True)
    return tuner


def _restored_tuner(tcfg: TuneConfig):
    from ray import tune

    _init_ray()
    tuner = tune.Tuner.restore(
        tcfg.experiment_location, trainable=build_trainable(tcfg), resume_unfinished=True, resume_errored=True
    )
    print(f"digits tune {tcfg.name}: resuming; interrupted trials continue from their last epoch", flush=True)
    return tuner


def run_tune(tcfg: TuneConfig, resume: bool = False) -> TuneOutcome:
    """Run (or `resume`) the experiment, then write its outputs; returns where they are and the best trial."""
    from ray import tune

    _check_data(tcfg)
    location = tcfg.experiment_location
    if resume and not tune.Tuner.can_restore(location):
        raise UserError(f"{location}: no Tune experiment to resume (start it without --resume)")
    if not resume and tune.Tuner.can_restore(location):
        raise UserError(
            f"{location}: an experiment with this name exists; continue it with --resume or pick another --name"
        )
    mirror = open_experiment(tcfg, resume)
    try:
        tuner = _restored_tuner(tcfg) if resume else _new_tuner(tcfg)
        with (
            _ctrl_c_recorded() as ctrl_c,
            _environment(**{TUNE_STRICT_METRICS_ENV: "1", TUNE_SNAPSHOT_WARNING_ENV: "0"}),
        ):
            tuner.fit()
        if ctrl_c.is_set() or _unfinished_trials(location):  # Tune saved its state and returned early
            print(f"interrupted: continue with `digits tune --config ... --name {tcfg.name} --resume`", file=sys.stderr)
            raise KeyboardInterrupt
        import ray

        ray.shutdown()  # free the cluster (and stop depending on it) before the final training
        return write_outputs(tcfg)
    finally:  # in a bucket: upload what the driver wrote since the last trial ended, drop the scratch folder
        mirror.sync()
        mirror.close()
