"""`digits tune` and `digits train --use_tuner`: arguments and handlers, kept out of digits/cli/app.py.

Ray and TensorFlow are imported only once a command runs, so `digits --help` and config errors stay instant.
"""

from __future__ import annotations

import argparse

from experiments.cli_common import HelpFormatter, add_config_arguments

# flag -> TuneConfig key: each flag is a shortcut for `--set key=value`
_FLAG_KEYS = {
    "budget_epochs": "budget_epochs",
    "num_samples": "num_samples",
    "max_concurrent": "max_concurrent",
    "cpus_per_trial": "cpus_per_trial",
    "gpus_per_trial": "gpus_per_trial",
    "name": "name",
    "storage_path": "storage_path",
    "epochs_per_trial": "epochs_per_trial",
    "objective": "objective",
}


def add_tune_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--budget-epochs",
        "--budget_epochs",
        dest="budget_epochs",
        type=int,
        metavar="N",
        help="trial-epochs to spend in all: every epoch any trial trains, QAT fine-tuning included",
    )
    parser.add_argument(
        "--num-samples",
        "--num_samples",
        dest="num_samples",
        type=int,
        help="most trials to run (with a budget, whichever ends first)",
    )
    parser.add_argument(
        "--max-concurrent", "--max_concurrent", dest="max_concurrent", type=int, help="trials running at once"
    )
    parser.add_argument(
        "--cpus-per-trial",
        "--cpus_per_trial",
        dest="cpus_per_trial",
        type=float,
        help="CPUs per trial (also TensorFlow's thread count)",
    )
    parser.add_argument(
        "--gpus-per-trial", "--gpus_per_trial", dest="gpus_per_trial", type=float, help="GPU share per trial, e.g. 0.25"
    )
    parser.add_argument(
        "--epochs-per-trial",
        "--epochs_per_trial",
        dest="epochs_per_trial",
        type=int,
        help="epochs each trial may train (rungs stop clearly weaker ones earlier)",
    )
    parser.add_argument(
        "--objective",
        choices=("single", "multi"),
        help="single: INT8 accuracy; multi: INT8 accuracy and INT8 size (Pareto front)",
    )
    parser.add_argument("--name", help="experiment name (folder under the storage path)")
    parser.add_argument(
        "--storage-path",
        "--storage_path",
        dest="storage_path",
        help="where experiments are kept: a folder, s3://bucket/prefix or gs://...",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the experiment <storage>/<name> after Ctrl-C or a crash"
    )


def add_tune_parser(sub: argparse._SubParsersAction) -> None:
    tune = sub.add_parser(
        "tune",
        formatter_class=HelpFormatter,
        help="search hyperparameters on Ray Tune",
        description="Optuna TPE (define-by-run, conditional on the architecture) on Ray Tune,\n"
        "started from each architecture's known-good settings, within a budget of\n"
        "trial-epochs. Trials are stopped early on their float validation accuracy\n"
        "(only where it separates them); a trial that finishes is scored on its\n"
        "full-INT8 TFLite model, which decides the ranking. A configuration already\n"
        "tried is never trained again; --resume continues interrupted trials.\n"
        "Writes <storage>/<name>/: best_hyperparameters.json/.yaml, best_config.yaml,\n"
        "detailed_tuning_results.csv/.parquet (as trials end), optuna_study.log\n"
        "(the Optuna study) and best_model/.\n"
        "On a cluster set RAY_ADDRESS (or use `ray job submit`).",
    )
    add_config_arguments(tune, default="tune")
    add_tune_flags(tune)
    tune.set_defaults(handler=cmd_tune)


def tune_overrides(args: argparse.Namespace, extra: list[str] | None = None) -> list[str]:
    flags = [
        f"{key}={getattr(args, flag)}" for flag, key in _FLAG_KEYS.items() if getattr(args, flag, None) is not None
    ]
    return list(extra or []) + flags


def _report(outcome) -> None:
    best = outcome.best
    knobs = ", ".join(f"{k}={v}" for k, v in best["hyperparameters"].items())
    print(
        f"{outcome.trials} trials trained ({outcome.trial_epochs} trial-epochs), {outcome.repeats_answered} "
        "repeated configurations answered from the cache"
    )
    print(
        f"best {best['trial_id']}: int8_accuracy {best.get('int8_accuracy', float('nan')):.4f}, "
        f"int8 size {best.get('int8_size_bytes', 0) / 1024:.1f} KB: {knobs}"
    )
    print(f"outputs in {outcome.location or outcome.experiment_dir}")


def cmd_tune(args: argparse.Namespace) -> int:
    from digits.tuning.config import load_tune_config

    tcfg = load_tune_config(args.config, tune_overrides(args, args.overrides)).with_absolute_paths()
    from digits.tuning.driver import run_tune

    _report(run_tune(tcfg, resume=args.resume))
    return 0


def train_with_tuner(args: argparse.Namespace, cfg) -> int:
    """`digits train --use_tuner`: tune with `cfg` as the base, then train the best configuration fully.

    The best model goes where `digits train` puts models (`cfg.export_dir`), not under the experiment.
    """
    from digits.tuning.config import TuneConfig, load_tune_config

    tcfg = load_tune_config(args.tune_config, tune_overrides(args))
    tcfg = TuneConfig.model_validate({**tcfg.model_dump(), "base": cfg.model_dump(), "train_best": False})
    tcfg = tcfg.with_absolute_paths()
    from digits.tuning.driver import run_tune
    from digits.tuning.outputs import best_config, train_best_model

    outcome = run_tune(tcfg, resume=args.resume)
    _report(outcome)
    best = best_config(outcome.best["hyperparameters"], tcfg).model_copy(update={"export_dir": cfg.export_dir})
    for path in train_best_model(best, tcfg):
        print(f"wrote {path}")
    return 0


def add_use_tuner_arguments(train: argparse.ArgumentParser) -> None:
    """`digits train --use_tuner [--tune-config FILE] [tune flags]`."""
    train.add_argument(
        "--use_tuner",
        "--use-tuner",
        action="store_true",
        help="search hyperparameters with `digits tune` first (this config as the base), then "
        "train the best configuration for `epochs`",
    )
    train.add_argument(
        "--tune-config",
        "--tune_config",
        dest="tune_config",
        default="tune",
        metavar="FILE",
        help="tune settings for --use_tuner",
    )
    add_tune_flags(train)
