"""Argument helpers shared by the `lpasrn`, `digits` and `experiments` command lines."""
from __future__ import annotations

import argparse
import logging
import os


def add_config_arguments(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """`--config FILE` and `--set key.path=value ...` (repeatable; several values per flag allowed)."""
    parser.add_argument("--config", default=default, metavar="FILE",
                        help="YAML experiment file or shipped preset name" + (f" (default: {default})" if default
                                                                              else ""))
    parser.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set stages.2.epochs=5 model.swinir_embed_dim=96")


def setup_logging(debug: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if not debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults and keep the description's line breaks."""
