"""Argument helpers shared by the `lpasrn`, `digits` and `experiments` command lines."""

from __future__ import annotations

import argparse
import logging
import os


def add_config_arguments(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """`--config FILE` and `--set key.path=value ...` (repeatable; several values per flag allowed)."""
    parser.add_argument(
        "--config",
        default=default,
        metavar="FILE",
        help="YAML experiment file or shipped preset name" + (f" (default: {default})" if default else ""),
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set stages.2.epochs=5 model.swinir_embed_dim=96",
    )


def setup_logging(debug: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults and keep the description's line breaks."""


def print_or_save_config(config, out_dir) -> int:
    """`<tool> config`: print the resolved config, or write `config.resolved.yaml` into `out_dir`."""
    from experiments.config import config_to_yaml, save_resolved_config

    if out_dir:
        print(f"wrote {save_resolved_config(config, out_dir)}")
    else:
        print(config_to_yaml(config), end="")
    return 0


def console_entrypoints(build_parser, logging_flag: bool = True):
    """`run(argv) -> exit code` (user errors are one line, exit 2) and `main()` for a console script."""
    import sys

    from experiments.errors import cli_entrypoint

    @cli_entrypoint
    def run(argv: list[str] | None = None) -> int:
        args = build_parser().parse_args(argv)
        if logging_flag:
            setup_logging(getattr(args, "debug", False))
        return args.handler(args)

    def main(argv: list[str] | None = None) -> None:
        sys.exit(run(argv))

    return run, main
