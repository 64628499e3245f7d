"""`digits tune` against KerasTuner (RandomSearch, Hyperband, BayesianOptimization): a study, side by side.

    python bench/tune_vs_kerastuner.py [--seeds 5] [--budgets 20,40] [--epochs 5] [--concurrency 1,2]
        [--train-images 300] [--val-images 150] [--test-images 600] [--target 0.85]
        [--methods digits,random,hyperband,bayesian] [--config tune] [--set KEY=VALUE ...] [--out DIR]

--methods may add digits tune with one design choice undone (random-sampler, no-warm-start, no-cut-margin,
known-warm-start: the registry's settings not moved for the trials' length), to measure what each is worth.

Per seed, a fresh draw of scikit-learn digits into a training split, a validation split (what every search
sees and ranks by) and a held-out test split that no search sees. Per budget B, every method searches the tune
file's `space` (KerasTuner gets every knob unconditionally, without the per-architecture ranges) with at most B
trial-epochs: every epoch a trial trains, QAT fine-tuning included, counted alike for all methods; a trial
starts only if its largest possible cost still fits. Every method scores a trial the same way: the INT8
TFLite model of its best validation epoch (PTQ, or QAT fine-tuning first), on the validation split.
Each method's best configuration is then retrained the same way (epochs_per_trial, the seed) and its INT8
model scored on the held-out split.

Printed per method and budget: test INT8 accuracy over seeds (mean, sd, min-max), trial-epochs used, the
trial-epochs spent until a trial first scored >= --target on validation (median over seeds; '-' when most
seeds never got there), and wall seconds per trial-epoch (digits tune at each --concurrency; KerasTuner runs
one trial at a time; digits tune's wall includes starting Ray and its first worker, shown apart as start-up s,
and the seconds per trial-epoch after it). Then the goal:
the smallest budget at which digits tune's mean reaches KerasTuner's best mean. Every run also goes to
<out>/runs.csv. Needs `keras-tuner` (pip install -e '.[bench]').
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import csv  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from digits.tuning.config import FloatRange, TuneConfig, load_tune_config  # noqa: E402
from digits.tuning.outputs import KNOB_NAMES  # noqa: E402
from experiments.errors import UserError, cli_entrypoint  # noqa: E402

KERAS_TUNERS = {
    "random": "KerasTuner RandomSearch",
    "hyperband": "KerasTuner Hyperband",
    "bayesian": "KerasTuner BayesianOptimization",
}
SPACE_FIELDS = {"architecture": "architectures", "optimizer": "optimizers"}  # knob -> SearchSpace field
# digits tune with one design choice undone (--methods), to measure what each choice is worth
DIGITS_VARIANTS = {
    "random-sampler": ["sampler=random"],
    "no-warm-start": ["warm_start=false"],
    "no-cut-margin": ["cut_margin=0"],
    "known-warm-start": ["warm_start_for_trial_length=false"],
}


@dataclass
class Search:
    """What one search left: its best configuration, (trial-epochs spent, validation INT8) per scored trial."""

    best: dict
    events: list[tuple[int, float]]
    trial_epochs: int
    wall_s: float
    startup_s: float = 0.0


@dataclass
class Run:
    method: str
    seed: int
    budget: int
    trial_epochs: int
    best_val_int8: float
    test_int8: float
    epochs_to_target: int | None
    wall_s: float
    startup_s: float
    best: dict = field(default_factory=dict)


def epochs_to_target(events: list[tuple[int, float]], target: float) -> int | None:
    """Trial-epochs spent when a trial first scored `target` or better (None: never)."""
    return next((spent for spent, accuracy in events if accuracy >= target), None)


# ----------------------------------------------------------------------------------------------------------
# Data: training / validation (searched) / held-out test (never searched), a fresh draw per seed
# ----------------------------------------------------------------------------------------------------------
def _write_split(folder: Path, rows: list[tuple[Path, str]]) -> None:
    folder.mkdir(parents=True)
    lines = []
    for source, label in rows:
        shutil.copy2(source, folder / source.name)
        lines.append(f"{source.name}\t{label}")
    (folder / "labels.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def seed_splits(pool: Path, out: Path, seed: int, train: int, val: int, test: int) -> tuple[Path, Path]:
    """`out/search/{train,test}` (test = the searches' validation) and `out/heldout`, disjoint draws of `pool`."""
    import numpy as np

    rows = []
    for split in ("train", "test"):
        for line in (pool / split / "labels.txt").read_text(encoding="utf-8").splitlines():
            name, label = line.split("\t")
            rows.append((pool / split / name, label))
    if train + val + test > len(rows):
        raise UserError(
            f"--train-images + --val-images + --test-images ({train + val + test}) exceed the "
            f"{len(rows)} scikit-learn digits"
        )
    order = np.random.default_rng(seed).permutation(len(rows))
    picks = [
        [rows[i] for i in order[start : start + count]]
        for start, count in ((0, train), (train, val), (train + val, test))
    ]
    _write_split(out / "search" / "train", picks[0])
    _write_split(out / "search" / "test", picks[1])
    _write_split(out / "heldout", picks[2])
    return out / "search", out / "heldout"


def study_config(
    args: argparse.Namespace,
    data: Path,
    seed: int,
    budget: int,
    concurrency: int,
    storage: Path,
    changes: list[str] | None = None,
) -> TuneConfig:
    epochs = args.epochs
    overrides = [
        f"epochs_per_trial={epochs}",
        f"grace_period={min(3, epochs)}",
        "cpus_per_trial=1",
        f"base.data_sources=[{{path: '{data}', weight: 1}}]",
        *args.overrides,
        *(changes or []),
        f"budget_epochs={budget}",
        "num_samples=null",
        f"max_concurrent={concurrency}",
        "train_best=false",
        f"seed={seed}",
        f"base.seed={seed}",
        f"storage_path={storage}",
        f"name=c{concurrency}",
    ]
    return load_tune_config(args.config, overrides)


# ----------------------------------------------------------------------------------------------------------
# The searches
# ----------------------------------------------------------------------------------------------------------
def search_digits_tune(tcfg: TuneConfig) -> Search:
    from digits.tuning.driver import run_tune
    from experiments.analysis import read_run

    started, start = time.time(), time.perf_counter()
    outcome = run_tune(tcfg)
    wall = time.perf_counter() - start
    history = read_run(outcome.experiment_dir).history.sort_values(["timestamp", "step"], kind="stable")
    spent, last, events = 0, {}, []
    for _, row in history.iterrows():
        epochs = int(row["trial_epochs"])
        spent += epochs - last.get(row["trial_id"], 0)
        last[row["trial_id"]] = epochs
        if "int8_accuracy" in row and row["int8_accuracy"] == row["int8_accuracy"]:  # not NaN
            events.append((spent, float(row["int8_accuracy"])))
    first_trial_start = min(row["timestamp"] - row["time_this_iter_s"] for _, row in history.iterrows())
    return Search(outcome.best["hyperparameters"], events, spent, wall, max(0.0, first_trial_start - started))


class Ledger:
    """Trial-epochs a KerasTuner search spent and what each trial scored."""

    def __init__(self, budget: int, max_trial_epochs: int):
        self.budget, self.max_trial_epochs = budget, max_trial_epochs
        self.spent, self.events = 0, []

    def fits_another(self) -> bool:
        return self.spent + self.max_trial_epochs <= self.budget


def search_kerastuner(kind: str, tcfg: TuneConfig, work: Path) -> Search:
    import keras_tuner as kt

    from digits.architectures import create_model
    from digits.export.int8 import int8_accuracy, int8_model_bytes
    from digits.export.qat import qat_epochs
    from digits.training.callbacks import KeepBest, build_callbacks
    from digits.training.objective import compile_model
    from digits.tuning.space import trial_digits_config
    from digits.tuning.trial import evaluation_images, trial_data

    space = tcfg.space
    ledger = Ledger(tcfg.budget_epochs, tcfg.max_trial_epochs)

    def choose(hp, name: str, spec):
        if isinstance(spec, FloatRange):
            if spec.low == spec.high:
                return spec.low
            return hp.Float(name, spec.low, spec.high, step=spec.step, sampling="log" if spec.log else "linear")
        return hp.Choice(name, list(spec))

    def config(hp, epochs: int):
        values = {knob: choose(hp, knob, getattr(space, SPACE_FIELDS.get(knob, knob))) for knob in KNOB_NAMES}
        return trial_digits_config(tcfg.base, values, epochs, early_stopping={"enabled": False})

    class DigitsHyperModel(kt.HyperModel):
        def build(self, hp):
            cfg = config(hp, tcfg.epochs_per_trial)
            model = create_model(cfg.model_architecture, cfg)
            compile_model(model, cfg)
            return model

        def fit(self, hp, model, *args, callbacks=(), epochs=None, initial_epoch=0, **kwargs):
            epochs = epochs or tcfg.epochs_per_trial
            cfg = config(hp, epochs)
            data = trial_data(cfg)
            keep_best = KeepBest("val_accuracy", None)
            model.fit(
                data.train,
                epochs=epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=data.steps_per_epoch,
                validation_data=data.validation,
                callbacks=build_callbacks(cfg, keep_best, None, callbacks),
                shuffle=False,
                verbose=0,
            )
            content = int8_model_bytes(model, cfg, data)  # the best validation epoch, as digits tune scores it
            accuracy = int8_accuracy(content, *evaluation_images(data, tcfg.eval_images, cfg.seed))
            ledger.spent += epochs - initial_epoch + (qat_epochs(cfg) if cfg.use_qat else 0)
            ledger.events.append((ledger.spent, accuracy))
            return {"int8_accuracy": accuracy}

    tuner_class = {"random": kt.RandomSearch, "hyperband": kt.Hyperband, "bayesian": kt.BayesianOptimization}[kind]

    class Budgeted(tuner_class):
        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            if not ledger.fits_another():
                self.oracle.max_trials = len(self.oracle.trials)  # the next create_trial says STOPPED

    common = {
        "objective": kt.Objective("int8_accuracy", direction="max"),
        "seed": tcfg.seed,
        "directory": str(work),
        "project_name": kind,
        "overwrite": True,
    }
    if kind == "hyperband":
        tuner = Budgeted(
            DigitsHyperModel(), max_epochs=tcfg.epochs_per_trial, factor=3, hyperband_iterations=1000, **common
        )
    else:
        tuner = Budgeted(DigitsHyperModel(), max_trials=10**6, **common)
    start = time.perf_counter()
    tuner.search(verbose=0)
    wall = time.perf_counter() - start
    values = tuner.oracle.get_best_trials(1)[0].hyperparameters.values
    best = {knob: values[knob] for knob in KNOB_NAMES if knob in values}
    return Search(best, ledger.events, ledger.spent, wall)


# ----------------------------------------------------------------------------------------------------------
# The held-out score of a configuration, retrained the same way for every method
# ----------------------------------------------------------------------------------------------------------
def heldout_int8_accuracy(best: dict, tcfg: TuneConfig, heldout: Path) -> float:
    from digits.data.datasets import to_float
    from digits.data.sources import ImageShape, load_source
    from digits.export.int8 import int8_accuracy
    from digits.tuning.space import trial_digits_config
    from digits.tuning.trial import INT8_FILE, train_trial

    cfg = trial_digits_config(tcfg.base, best, tcfg.epochs_per_trial, early_stopping={"enabled": False})
    kept: dict[str, bytes] = {}

    def keep_int8(metrics: dict, folder: Path | None) -> None:
        if folder is not None and (folder / INT8_FILE).is_file():
            kept["int8"] = (folder / INT8_FILE).read_bytes()

    train_trial(cfg, keep_int8)
    test = load_source(heldout, ImageShape(cfg.input_height, cfg.input_width, cfg.input_channels), cfg.nb_classes).train
    return int8_accuracy(kept["int8"], to_float(test.images), test.labels)


# ----------------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------------
def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def summary_table(runs: list[Run], target: float) -> str:
    from digits.cli.tables import format_table

    rows = [
        (
            "method",
            "budget",
            "seeds",
            "test INT8 mean ± sd",
            "min-max",
            "trial-epochs",
            f"to val {target:.2f}",
            "s/trial-epoch",
            "start-up s",
            "s/trial-epoch after",
        )
    ]
    groups: dict[tuple[str, int], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.method, run.budget), []).append(run)
    for (method, budget), group in sorted(groups.items(), key=lambda item: (item[0][1], item[0][0])):
        tests = [r.test_int8 for r in group]
        reached = [r.epochs_to_target for r in group if r.epochs_to_target is not None]
        to_target = str(int(statistics.median(reached))) if len(reached) * 2 > len(group) else "-"
        rows.append(
            (
                method,
                str(budget),
                str(len(group)),
                _mean_sd(tests),
                f"{min(tests):.3f}-{max(tests):.3f}",
                f"{statistics.mean(r.trial_epochs for r in group):.0f}",
                to_target,
                f"{statistics.mean(r.wall_s / max(1, r.trial_epochs) for r in group):.2f}",
                f"{statistics.mean(r.startup_s for r in group):.1f}",
                f"{statistics.mean((r.wall_s - r.startup_s) / max(1, r.trial_epochs) for r in group):.2f}",
            )
        )
    return format_table(rows)


def goal_line(runs: list[Run]) -> str:
    """Does digits tune reach KerasTuner's best mean test INT8 accuracy with at most half its trial-epochs?"""
    groups: dict[tuple[str, int], list[float]] = {}
    for run in runs:
        groups.setdefault((run.method, run.budget), []).append(run.test_int8)
    means = {key: statistics.mean(values) for key, values in groups.items()}
    theirs = {key: value for key, value in means.items() if key[0].startswith("KerasTuner")}
    ours = {key: value for key, value in means.items() if key[0].startswith("digits tune")}
    if not theirs or not ours:
        return "goal: needs digits tune and at least one KerasTuner method"
    (their_method, their_budget), their_best = max(theirs.items(), key=lambda item: (item[1], -item[0][1]))
    head = (
        f"goal: KerasTuner's best mean test INT8 accuracy is {their_best:.3f} ({their_method}, {their_budget} "
        "trial-epochs); "
    )
    reached = sorted((budget, method) for (method, budget), value in ours.items() if value >= their_best)
    if not reached:
        return head + "digits tune does not reach it within the budgets run"
    budget, method = reached[0]
    verdict = "met" if budget * 2 <= their_budget else "not met"
    return head + f"{method} reaches it at {budget} trial-epochs ({budget / their_budget:.2f} of theirs): {verdict}"


def write_runs(runs: list[Run], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(asdict(runs[0])))
        writer.writeheader()
        for run in runs:
            writer.writerow(asdict(run))


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"{text!r}: expected comma-separated whole numbers, e.g. 20,40") from None
    if not values or min(values) < 1:
        raise UserError(f"{text!r}: expected positive whole numbers")
    return values


@cli_entrypoint
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tune", help="tune file whose space and base are used")
    parser.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seeds", type=int, default=5, help="seeds (data draw, searchers, training)")
    parser.add_argument("--budgets", type=_int_list, default=[20, 40], help="trial-epoch budgets, e.g. 20,40,80")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per trial (and of the retraining)")
    parser.add_argument("--concurrency", type=_int_list, default=[1, 2], help="digits tune trials at once")
    parser.add_argument(
        "--methods",
        default="digits,random,hyperband,bayesian",
        help="digits (and its variants random-sampler, no-warm-start, no-cut-margin, known-warm-start) and "
        "KerasTuner's random, hyperband, bayesian",
    )
    parser.add_argument("--train-images", type=int, default=300)
    parser.add_argument("--val-images", type=int, default=150)
    parser.add_argument("--test-images", type=int, default=600)
    parser.add_argument("--target", type=float, default=0.85, help="validation INT8 accuracy for 'to val'")
    parser.add_argument("--out", type=Path, help="work folder (default: a new temporary one)")
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    known = ["digits", *DIGITS_VARIANTS, *KERAS_TUNERS]
    unknown = sorted(set(methods) - set(known))
    if unknown:
        raise UserError(f"--methods: unknown {unknown}; known: {', '.join(known)}")
    if any(m in KERAS_TUNERS for m in methods):
        try:
            import keras_tuner  # noqa: F401
        except ImportError:
            raise UserError("this bench needs keras-tuner: pip install -e '.[bench]'") from None
    work = args.out or Path(tempfile.mkdtemp(prefix="tune-study-"))
    work.mkdir(parents=True, exist_ok=True)
    from digits.data.sklearn_import import import_sklearn_digits
    from digits.training.runtime import limit_threads

    limit_threads(1)  # KerasTuner and the retraining run in this process: one thread, as a digits tune trial gets
    pool = work / "sklearn"
    if not pool.exists():
        import_sklearn_digits(pool)
    runs: list[Run] = []
    for seed in range(args.seeds):
        search_dir, heldout = seed_splits(
            pool, work / f"seed{seed}" / "data", seed, args.train_images, args.val_images, args.test_images
        )
        for budget in args.budgets:
            base = work / f"seed{seed}" / f"budget{budget}"
            searches: list[tuple[str, TuneConfig, Search]] = []
            for concurrency in args.concurrency if "digits" in methods else []:
                tcfg = study_config(args, search_dir, seed, budget, concurrency, base / "digits")
                searches.append((f"digits tune (c={concurrency})", tcfg, search_digits_tune(tcfg)))
            for variant, changes in DIGITS_VARIANTS.items():
                if variant in methods:  # one design choice undone, at one trial at a time: what it is worth
                    tcfg = study_config(args, search_dir, seed, budget, 1, base / variant, changes)
                    searches.append((f"digits tune ({variant})", tcfg, search_digits_tune(tcfg)))
            for kind in (m for m in methods if m in KERAS_TUNERS):
                tcfg = study_config(args, search_dir, seed, budget, 1, base / "digits")
                searches.append((KERAS_TUNERS[kind], tcfg, search_kerastuner(kind, tcfg, base / "kerastuner")))
            for method, tcfg, search in searches:
                best_val = max((accuracy for _, accuracy in search.events), default=0.0)
                test = heldout_int8_accuracy(search.best, tcfg, heldout)
                runs.append(
                    Run(
                        method,
                        seed,
                        budget,
                        search.trial_epochs,
                        best_val,
                        test,
                        epochs_to_target(search.events, args.target),
                        search.wall_s,
                        search.startup_s,
                        search.best,
                    )
                )
                print(
                    f"seed {seed} budget {budget} {method}: test INT8 {runs[-1].test_int8:.4f} "
                    f"({search.trial_epochs} trial-epochs, {search.wall_s:.0f} s)",
                    flush=True,
                )
        write_runs(runs, work / "runs.csv")
    print()
    print(summary_table(runs, args.target))
    print(goal_line(runs))
    print(
        f"{args.seeds} seed(s); {args.train_images}/{args.val_images}/{args.test_images} training/validation/"
        f"held-out images; {args.epochs} epochs per trial; every run in {work / 'runs.csv'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
