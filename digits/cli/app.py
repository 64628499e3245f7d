"""`digits` command line: meter-digit recognizers (TensorFlow/Keras) and their data."""

from __future__ import annotations

import argparse
from pathlib import Path

from digits.cli.adapt import add_adapt_parsers
from digits.cli.synth import add_synth_parser
from digits.tuning.cli import add_tune_parser, add_use_tuner_arguments
from experiments.cli_common import HelpFormatter, add_config_arguments, console_entrypoints, print_or_save_config


def _cmd_config(args: argparse.Namespace) -> int:
    from digits.config import load_digits_config

    return print_or_save_config(load_digits_config(args.config, args.overrides), args.out)


def _cmd_import_sklearn(args: argparse.Namespace) -> int:
    from digits.data.sklearn_import import import_sklearn_digits

    counts = import_sklearn_digits(args.out, test_fraction=args.test_fraction, seed=args.seed, overwrite=args.overwrite)
    print(
        f"wrote scikit-learn digits to {args.out}: train {counts['train']}, test {counts['test']} "
        f"(32x20 grey PNG + labels.txt)"
    )
    return 0


def _training_configs(args: argparse.Namespace) -> list:
    """One validated config per architecture to train, in order; unknown names fail before any training."""
    from digits.architectures import list_models, resolve_name
    from digits.config import DigitsConfig, load_digits_config

    overrides = list(args.overrides) + ([f"epochs={args.epochs}"] if args.epochs else [])
    if args.test_all_models:
        overrides.append("epochs=1")
    cfg = load_digits_config(args.config, overrides)
    if args.train_all or args.test_all_models:
        names = list_models()
    else:
        names = [resolve_name(name) for name in (args.train or [cfg.model_architecture])]
    cfg = cfg.with_absolute_paths()
    return [DigitsConfig.model_validate({**cfg.model_dump(), "model_architecture": name}) for name in names]


def _cmd_train(args: argparse.Namespace) -> int:
    from digits.workflow.preflight import check_run

    configs = _training_configs(args)
    for cfg in configs:
        check_run(cfg)
    if args.use_tuner:
        from digits.tuning.cli import train_with_tuner

        return train_with_tuner(args, configs[0])
    if len(configs) > 1 and not args.sequential:
        from digits.ray_glue.tasks import train_concurrently

        results = train_concurrently(configs, args.cpus_per_model, args.no_cleanup, on_done=_print_summary)
    else:
        results = _train_in_process(configs, args)
    if args.test_all_models or len(results) > 1:
        print(_results_table(results))
    return 0


def _train_in_process(configs: list, args: argparse.Namespace) -> list:
    from digits.training.runtime import limit_threads
    from digits.workflow.run import train_and_export

    limit_threads(args.threads)
    verbose = 0 if args.test_all_models and not args.debug else 2  # the sanity run's table is what matters
    results = []
    for cfg in configs:
        results.append(train_and_export(cfg, no_cleanup=args.no_cleanup, verbose=verbose))
        _print_summary(results[-1])
    return results


def _print_summary(result) -> None:
    print(result.summary(), flush=True)


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _results_table(results: list) -> str:
    """One row per `RunResult`: parameters, float and INT8 TFLite accuracy, INT8 size."""
    from digits.cli.tables import format_table

    rows = [("architecture", "params", "float acc", "INT8 acc", "INT8 KB")]
    rows += [
        (
            r.model,
            str(r.params),
            _fmt(r.float_tflite.accuracy, ".4f"),
            _fmt(r.int8_accuracy, ".4f"),
            _fmt(r.int8_size_bytes / 1024 if r.int8_size_bytes else None, ".1f"),
        )
        for r in results
    ]
    return format_table(rows)


def _cmd_list_models(args: argparse.Namespace) -> int:
    from digits.training.runtime import limit_threads

    limit_threads(args.threads)
    from digits.cli.tables import format_table
    from digits.export.inventory import describe_models

    rows = [("architecture", "params", "INT8 KB", "embedded", "description")]
    for info in describe_models(args.nb_classes, args.input_channels):
        rows.append(
            (
                info.name,
                str(info.params),
                f"{info.int8_bytes / 1024:.1f}",
                "yes" if info.embedded else "no",
                info.description,
            )
        )
    print(format_table(rows))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digits",
        formatter_class=HelpFormatter,
        description="Digit recognizers for embedded meter reading, tuned on Ray.",
    )
    parser.add_argument("--debug", action="store_true", help="verbose logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    config = sub.add_parser(
        "config",
        formatter_class=HelpFormatter,
        help="validate and print a config",
        description="Validate a digits experiment file with overrides and print it.",
    )
    add_config_arguments(config, default="default")
    config.add_argument("--out", type=Path, help="write config.resolved.yaml into this folder instead")
    config.set_defaults(handler=_cmd_config)

    sk = sub.add_parser(
        "import-sklearn",
        formatter_class=HelpFormatter,
        help="write scikit-learn's real handwritten digits as a data source",
        description="Write scikit-learn's digits, resized to 32x20, as train/ and test/ folders with labels.txt.",
    )
    sk.add_argument("--out", required=True, type=Path, help="output folder")
    sk.add_argument("--test-fraction", type=float, default=0.2)
    sk.add_argument("--seed", type=int, default=42)
    sk.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    sk.set_defaults(handler=_cmd_import_sklearn)

    train = sub.add_parser(
        "train",
        formatter_class=HelpFormatter,
        help="train, export and evaluate architectures",
        description="Train one or more architectures and export each to\n"
        "<export_dir>/<N>cls_<GRAY|RGB>/<model>/: best_model.keras,\n"
        "<model>_float.tflite, <model>_quantized.tflite (full INT8),\n"
        "<model>_<esp_dl_target>.espdl (with esp_dl_quantize, extra espdl),\n"
        "training_history.png, metrics.json, config.resolved.yaml.\n\n"
        "Several models train concurrently as Ray tasks (--cpus-per-model CPUs and\n"
        "TensorFlow threads each) on the Ray named by RAY_ADDRESS, else on a local Ray\n"
        "started for the command; --sequential trains them one after another in this\n"
        "process. One model always trains in this process.",
    )
    add_config_arguments(train, default="default")
    models = train.add_mutually_exclusive_group()
    models.add_argument(
        "--train",
        nargs="+",
        metavar="MODEL",
        help="architectures to train (default: model_architecture of the config); see `digits list-models`",
    )
    models.add_argument("--train_all", "--train-all", action="store_true", help="train every architecture")
    models.add_argument(
        "--test_all_models",
        "--test-all-models",
        action="store_true",
        help="1-epoch sanity run of every architecture, then a table of the results",
    )
    train.add_argument("--epochs", type=int, help="shortcut for --set epochs=N")
    train.add_argument(
        "--no_cleanup", "--no-cleanup", action="store_true", help="keep the per-epoch checkpoints/ folder"
    )
    train.add_argument("--threads", type=int, default=0, help="TensorFlow CPU threads (0: all cores)")
    train.add_argument(
        "--cpus-per-model",
        "--cpus_per_model",
        type=int,
        default=1,
        help="CPUs (and TensorFlow threads) of each model's Ray task",
    )
    train.add_argument(
        "--sequential",
        action="store_true",
        help="train several models one after another in this process instead of as Ray tasks",
    )
    train.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="verbose logging and per-epoch Keras output (same as `digits --debug train`)",
    )
    add_use_tuner_arguments(train)
    train.set_defaults(handler=_cmd_train)

    lm = sub.add_parser(
        "list-models",
        formatter_class=HelpFormatter,
        help="list architectures with parameter count and INT8 TFLite size",
        description="Build every registered architecture with trained-like weights, convert it "
        "to full-INT8 TFLite (calibrated on random images, nothing written to disk) and "
        "print its size: the size of the <model>_quantized.tflite that `digits train` "
        "writes, to within about 1 %.",
    )
    lm.add_argument("--nb-classes", type=int, choices=(10, 100, 11), default=10)
    lm.add_argument("--input-channels", type=int, choices=(1, 3), default=1)
    lm.add_argument("--threads", type=int, default=0, help="TensorFlow CPU threads (0: all cores)")
    lm.set_defaults(handler=_cmd_list_models)
    add_tune_parser(sub)
    add_synth_parser(sub)
    add_adapt_parsers(sub)
    return parser


run, main = console_entrypoints(build_parser)

if __name__ == "__main__":
    main()
