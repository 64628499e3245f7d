"""The `digits` command line: `app` (the parser; config, import-sklearn, train, list-models), `adapt`
(fine-tune, retrain), `synth`, and `tables` (plain-text result tables). `digits tune` lives in `digits.tuning.cli`.

`main`, `run` and `build_parser` are re-exported so the console script stays `digits.cli:main`.
"""

from digits.cli.app import build_parser, main, run

__all__ = ["build_parser", "main", "run"]
