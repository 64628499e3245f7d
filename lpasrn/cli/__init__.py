"""`lpasrn` command line: plate data (synth, preview, pack, check-data), configuration, training, reading plates
(evaluate, infer, predict, export) and the model registry, one module per group of commands."""

from lpasrn.cli.app import build_parser, main, run

__all__ = ["build_parser", "main", "run"]
