"""`digits fine-tune` and `digits retrain`: adapt a trained best_model.keras instead of training from scratch."""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.cli_common import HelpFormatter, add_config_arguments

OUTPUT_NOTE = (
    "Writes <export_dir>/<N>cls_<GRAY|RGB>/<model>_finetuned/: best_model.keras,\n"
    "<model>_finetuned_float.tflite, <model>_finetuned_quantized.tflite (full INT8), metrics.json,\n"
    "training_history.png, config.resolved.yaml. Without --config the model folder's\n"
    "config.resolved.yaml is used (else the default preset)."
)


def _config(args: argparse.Namespace):
    """--config, else the config the model was trained with, else the default preset; plus --set/--epochs."""
    from digits.config import load_digits_config
    from experiments.config import RESOLVED_CONFIG_NAME

    beside = Path(args.model_path).parent / RESOLVED_CONFIG_NAME
    path = args.config or (beside if beside.is_file() else "default")
    return load_digits_config(path, list(args.overrides) + ([f"epochs={args.epochs}"] if args.epochs else []))


def _cmd_fine_tune(args: argparse.Namespace) -> int:
    from digits.workflow.adapt_plan import FineTunePlan, require_model_file

    plan = FineTunePlan(
        args.strategy, args.data_ratio, args.augmented_ratio, args.learning_rate_multiplier, args.augmented_dir
    )
    plan.validate()
    require_model_file(args.model_path)
    cfg = _config(args)
    from digits.training.runtime import limit_threads
    from digits.workflow.finetune import fine_tune

    limit_threads(args.threads)
    result = fine_tune(cfg, args.model_path, plan, verbose=2 if args.debug else 0)
    print(result.summary(), flush=True)
    return 0


def _cmd_retrain(args: argparse.Namespace) -> int:
    from digits.workflow.adapt_plan import check_learning_rate, require_model_file, with_bad_source

    require_model_file(args.model_path)
    check_learning_rate(args.learning_rate)
    cfg = _config(args)
    with_bad_source(cfg, args.bad_images_dir, args.bad_weight)  # checks folder and weight before TensorFlow starts
    from digits.training.runtime import limit_threads
    from digits.workflow.finetune import retrain

    limit_threads(args.threads)
    result = retrain(
        cfg, args.model_path, args.bad_images_dir, args.bad_weight, args.learning_rate, verbose=2 if args.debug else 0
    )
    print(result.summary(), flush=True)
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model_path",
        "--model-path",
        required=True,
        type=Path,
        help="trained model, e.g. exported_models/10cls_GRAY/digit_recognizer_v4/best_model.keras",
    )
    add_config_arguments(parser)
    parser.add_argument("--epochs", type=int, help="shortcut for --set epochs=N")
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow CPU threads (0: all cores)")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="per-epoch Keras output")


def add_adapt_parsers(sub: argparse._SubParsersAction) -> None:
    ft = sub.add_parser(
        "fine-tune",
        formatter_class=HelpFormatter,
        help="fine-tune a trained model",
        description="Continue training a trained model on the original sources (data_ratio of the\n"
        "draws) mixed with augmented data (augmented_ratio): --augmented_dir, or the\n"
        "original images heavily augmented. Strategies: full (nothing frozen),\n"
        "last_layer (only the final Dense trains), feature_extractor (the conv trunk\n"
        "frozen, the head trains). lr = learning_rate x multiplier.\n\n" + OUTPUT_NOTE,
    )
    _common(ft)
    ft.add_argument("--strategy", default="full", help="full, last_layer or feature_extractor")
    ft.add_argument("--data_ratio", "--data-ratio", type=float, default=0.1, help="share of the original data")
    ft.add_argument(
        "--augmented_ratio", "--augmented-ratio", type=float, default=0.9, help="share of the augmented data"
    )
    ft.add_argument(
        "--learning_rate_multiplier",
        "--learning-rate-multiplier",
        type=float,
        default=0.5,
        help="fine-tuning lr = learning_rate x this",
    )
    ft.add_argument(
        "--augmented_dir",
        "--augmented-dir",
        type=Path,
        help="folder of augmented images (a data source); default: heavy augmentation of the sources",
    )
    ft.set_defaults(handler=_cmd_fine_tune)

    rt = sub.add_parser(
        "retrain",
        formatter_class=HelpFormatter,
        help="retrain on a folder of bad predictions",
        description="Continue training a trained model with a folder of bad predictions (a data\n"
        "source: labels*.txt or class sub-folders) added to data_sources at a heavy\n"
        "weight (its weight overridden if already listed), at a low learning rate;\n"
        "PTQ INT8 export.\n\n" + OUTPUT_NOTE,
    )
    _common(rt)
    rt.add_argument(
        "--bad_images_dir",
        "--bad-images-dir",
        required=True,
        type=Path,
        help="folder of wrongly predicted images with their true labels",
    )
    rt.add_argument(
        "--bad_weight",
        "--bad-weight",
        type=float,
        default=10.0,
        help="sampling weight of the bad images (the other sources keep theirs)",
    )
    rt.add_argument("--learning_rate", "--learning-rate", type=float, default=1e-4, help="retraining lr")
    rt.set_defaults(handler=_cmd_retrain)
