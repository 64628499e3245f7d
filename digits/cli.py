"""`digits` command line: meter-digit recognizers (TensorFlow/Keras) and their data."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.cli_common import HelpFormatter, add_config_arguments, setup_logging
from experiments.errors import cli_entrypoint


def _cmd_config(args: argparse.Namespace) -> int:
    from digits.config import load_digits_config
    from experiments.config import config_to_yaml, save_resolved_config

    cfg = load_digits_config(args.config, args.overrides)
    if args.out:
        print(f"wrote {save_resolved_config(cfg, args.out)}")
    else:
        print(config_to_yaml(cfg), end="")
    return 0


def _cmd_import_sklearn(args: argparse.Namespace) -> int:
    from digits.sklearn_import import import_sklearn_digits

    counts = import_sklearn_digits(args.out, test_fraction=args.test_fraction, seed=args.seed,
                                   overwrite=args.overwrite)
    print(f"wrote scikit-learn digits to {args.out}: train {counts['train']}, test {counts['test']} "
          f"(32x20 grey PNG + labels.txt)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="digits", formatter_class=HelpFormatter,
                                     description="Digit recognizers for embedded meter reading, tuned on Ray.")
    parser.add_argument("--debug", action="store_true", help="verbose logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    config = sub.add_parser("config", formatter_class=HelpFormatter, help="validate and print a config",
                            description="Validate a digits experiment file with overrides and print it.")
    add_config_arguments(config, default="default")
    config.add_argument("--out", type=Path, help="write config.resolved.yaml into this folder instead")
    config.set_defaults(handler=_cmd_config)

    sk = sub.add_parser("import-sklearn", formatter_class=HelpFormatter,
                        help="write scikit-learn's real handwritten digits as a data source",
                        description="Write scikit-learn's digits, resized to 32x20, as train/ and test/ "
                                    "folders with labels.txt.")
    sk.add_argument("--out", required=True, type=Path, help="output folder")
    sk.add_argument("--test-fraction", type=float, default=0.2)
    sk.add_argument("--seed", type=int, default=42)
    sk.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    sk.set_defaults(handler=_cmd_import_sklearn)
    return parser


@cli_entrypoint
def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.debug)
    return args.handler(args)


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
