"""`lpasrn` command line: the parser assembled from the command modules, and the console entry points."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable

from experiments.cli_common import HelpFormatter, console_entrypoints
from experiments.errors import UserError
from lpasrn.cli import data_commands, model_commands, reading_commands, training_commands


def _checkpoint_errors_as_user_errors(handler: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """A checkpoint the models cannot use (`CheckpointError`; they know nothing of the command line) is a one-line
    user error. Its class is imported only once something failed, so `--help` stays free of torch."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except Exception as err:
            from lpasrn.models.checkpoints import CheckpointError

            if isinstance(err, CheckpointError):
                raise UserError(str(err)) from None
            raise

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lpasrn",
        formatter_class=HelpFormatter,
        description="License-plate super-resolution (SwinIR + PARSeq) on Ray.",
    )
    parser.add_argument("--debug", action="store_true", help="verbose logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for commands in (data_commands, training_commands, reading_commands, model_commands):
        commands.add_commands(sub)
    for command in sub.choices.values():
        command.set_defaults(handler=_checkpoint_errors_as_user_errors(command.get_default("handler")))
    return parser


run, main = console_entrypoints(build_parser)

if __name__ == "__main__":
    main()
