"""`digits tune` (Optuna TPE + ASHA on Ray Tune) against KerasTuner (RandomSearch, Hyperband), side by side.

    python bench/tune_vs_kerastuner.py [--config tune] [--set k=v ...] [--samples 8] [--epochs 3]
                                       [--target 0.9] [--data DIR]

Same search space (the tune file's `space`; per-architecture ranges are not given to KerasTuner), same data,
same budget of trial-epochs (samples x epochs; Hyperband spends what its schedule spends and the table says
how much), and the same score: INT8 TFLite accuracy after each epoch (the digits INT8 probe, fed into Keras'
logs so KerasTuner optimises it too). Prints best INT8 accuracy, trial-epochs used, trial-epochs until the
target accuracy was first reached, and wall time with 1 and 2 concurrent trials (KerasTuner runs one at a
time). Needs `keras-tuner` (bench-only dependency). Without --data, a few hundred scikit-learn digits.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from digits.tuning.config import FloatRange, TuneConfig, load_tune_config  # noqa: E402
from experiments.errors import UserError, cli_entrypoint  # noqa: E402


@dataclass
class Row:
    method: str
    concurrent: int
    trials: int
    trial_epochs: int
    best_int8: float
    epochs_to_target: int | None
    wall_s: float


def epochs_to_target(accuracies_in_time_order: list[float], target: float) -> int | None:
    """How many trial-epochs had run when INT8 accuracy first reached `target` (None: never)."""
    for index, accuracy in enumerate(accuracies_in_time_order, 1):
        if accuracy >= target:
            return index
    return None


def small_sklearn_digits(root: Path, train: int = 400, test: int = 150) -> Path:
    from digits.sklearn_import import import_sklearn_digits

    import_sklearn_digits(root)
    for split, keep in (("train", train), ("test", test)):
        labels = root / split / "labels.txt"
        labels.write_text("\n".join(labels.read_text().splitlines()[:keep]) + "\n")
    return root


# ----------------------------------------------------------------------------------------------------------
# digits tune
# ----------------------------------------------------------------------------------------------------------
def run_digits_tune(tcfg: TuneConfig, concurrent: int, storage: Path, target: float) -> Row:
    from digits.tuning.driver import run_tune
    from experiments.analysis import read_run

    tcfg = TuneConfig.model_validate({**tcfg.model_dump(), "max_concurrent": concurrent, "train_best": False,
                                      "storage_path": str(storage), "name": f"bench_c{concurrent}"})
    start = time.perf_counter()
    outcome = run_tune(tcfg)
    wall = time.perf_counter() - start
    history = read_run(outcome.experiment_dir).history.sort_values("timestamp", kind="stable")
    accuracies = [float(a) for a in history["int8_accuracy"].dropna()]
    return Row("digits tune (TPE+ASHA)", concurrent, outcome.trials, len(accuracies), max(accuracies, default=0.0),
               epochs_to_target(accuracies, target), wall)


# ----------------------------------------------------------------------------------------------------------
# KerasTuner
# ----------------------------------------------------------------------------------------------------------
def kerastuner_rows(tcfg: TuneConfig, target: float, work: Path) -> list[Row]:
    import keras_tuner as kt

    from digits.architectures import create_model
    from digits.int8_probe import Int8Probe
    from digits.pipeline import build_datasets
    from digits.train import compile_model
    from digits.tuning.space import trial_digits_config

    space = tcfg.space
    accuracies: list[float] = []

    def choose(hp, name: str, spec):
        if isinstance(spec, FloatRange):
            if spec.low == spec.high:
                return spec.low
            return hp.Float(name, spec.low, spec.high, step=spec.step, sampling="log" if spec.log else "linear")
        return hp.Choice(name, list(spec))

    class Int8IntoLogs(Int8Probe):
        """The digits INT8 probe writing into Keras' logs, so KerasTuner's objective can read it."""

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.reporter = (logs if logs is not None else {}).update
            super().on_epoch_end(epoch, logs)
            accuracies.append(float(logs["int8_accuracy"]) if logs is not None else 0.0)

    class DigitsHyperModel(kt.HyperModel):
        def config(self, hp):
            values = {"architecture": choose(hp, "architecture", space.architectures),
                      "optimizer": choose(hp, "optimizer", space.optimizers),
                      "learning_rate": choose(hp, "learning_rate", space.learning_rate),
                      "batch_size": choose(hp, "batch_size", space.batch_size),
                      "focal_gamma": choose(hp, "focal_gamma", space.focal_gamma),
                      "focal_alpha": choose(hp, "focal_alpha", space.focal_alpha),
                      "label_smoothing": choose(hp, "label_smoothing", space.label_smoothing),
                      "dropout": choose(hp, "dropout", space.dropout),
                      "quantization": choose(hp, "quantization", space.quantization)}
            return trial_digits_config(tcfg.base, values, tcfg.epochs_per_trial,
                                       early_stopping={"enabled": False})

        def build(self, hp):
            cfg = self.config(hp)
            model = create_model(cfg.model_architecture, cfg)
            compile_model(model, cfg)
            return model

        def fit(self, hp, model, *args, callbacks=(), **kwargs):
            cfg = self.config(hp)
            data = build_datasets(cfg)
            probe = Int8IntoLogs(cfg, data, lambda metrics: None, tcfg.eval_images)
            return model.fit(data.train, steps_per_epoch=data.steps_per_epoch, validation_data=data.validation,
                             callbacks=[probe, *callbacks], verbose=0, epochs=kwargs.get("epochs", cfg.epochs),
                             initial_epoch=kwargs.get("initial_epoch", 0))

    objective = kt.Objective("int8_accuracy", direction="max")
    tuners = {"KerasTuner RandomSearch": kt.RandomSearch(DigitsHyperModel(), objective=objective,
                                                         max_trials=tcfg.num_samples, seed=tcfg.seed,
                                                         directory=str(work), project_name="random"),
              "KerasTuner Hyperband": kt.Hyperband(DigitsHyperModel(), objective=objective,
                                                   max_epochs=tcfg.epochs_per_trial, factor=3,
                                                   hyperband_iterations=1, seed=tcfg.seed, directory=str(work),
                                                   project_name="hyperband")}
    rows = []
    for name, tuner in tuners.items():
        accuracies.clear()
        start = time.perf_counter()
        tuner.search(epochs=tcfg.epochs_per_trial, verbose=0)
        wall = time.perf_counter() - start
        rows.append(Row(name, 1, len(tuner.oracle.trials), len(accuracies), max(accuracies, default=0.0),
                        epochs_to_target(list(accuracies), target), wall))
    return rows


def format_rows(rows: list[Row], target: float) -> str:
    from digits.tables import format_table

    table = [("method", "concurrent", "trials", "trial-epochs", "best INT8 acc", f"epochs to {target:.2f}",
              "wall s")]
    table += [(r.method, str(r.concurrent), str(r.trials), str(r.trial_epochs), f"{r.best_int8:.4f}",
               "-" if r.epochs_to_target is None else str(r.epochs_to_target), f"{r.wall_s:.0f}") for r in rows]
    return format_table(table)


@cli_entrypoint
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tune", help="tune file whose space and base are used")
    parser.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE")
    parser.add_argument("--samples", type=int, default=8, help="trials per method (budget = samples x epochs)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial")
    parser.add_argument("--target", type=float, default=0.9, help="INT8 accuracy for the 'epochs to' column")
    parser.add_argument("--data", type=Path, help="digits data folder (default: scikit-learn digits, small)")
    parser.add_argument("--skip-kerastuner", action="store_true", help="only digits tune")
    args = parser.parse_args(argv)
    if not args.skip_kerastuner:
        try:
            import keras_tuner  # noqa: F401
        except ImportError:
            raise UserError("this bench needs keras-tuner: pip install keras-tuner (bench-only dependency)") from None
    work = Path(tempfile.mkdtemp(prefix="tune-bench-"))
    data = args.data or small_sklearn_digits(work / "sklearn")
    overrides = [f"num_samples={args.samples}", f"epochs_per_trial={args.epochs}",
                 f"grace_period={min(2, args.epochs)}", "cpus_per_trial=1",
                 f"base.data_sources=[{{path: '{data}', weight: 1}}]", *args.overrides]
    tcfg = load_tune_config(args.config, overrides)
    from digits.runtime import limit_threads

    limit_threads(1)  # KerasTuner trains in this process: one thread, as one digits tune trial gets
    rows = [run_digits_tune(tcfg, concurrent, work / "ray", args.target) for concurrent in (1, 2)]
    print(format_rows(rows, args.target), flush=True)
    if not args.skip_kerastuner:
        rows += kerastuner_rows(tcfg, args.target, work / "kerastuner")
        print(format_rows(rows, args.target))
    print(f"budget: {args.samples} trials x {args.epochs} epochs = {args.samples * args.epochs} trial-epochs; "
          f"work folder {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
