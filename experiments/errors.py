"""User-facing errors: one line, exit code 2, no traceback.

A `UserError` is something the person running the command can fix (a bad key, a missing file, a corrupt
image). Bugs stay ordinary exceptions so their tracebacks survive.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., int | None])


class UserError(Exception):
    """An error whose message is shown to the user as one line (what, where, how to fix)."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def cli_entrypoint(func: F) -> F:
    """Wrap a console entry point: `UserError` -> one line on stderr and exit 2; Ctrl-C -> exit 130."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            code = func(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        return 0 if code is None else code

    return wrapper  # type: ignore[return-value]
