"""Tests only: make a stage fail once at a chosen epoch, to exercise resuming under Ray Train and locally."""

from __future__ import annotations

import os
from pathlib import Path

FAIL_AT_EPOCH_ENV = "GLYPHRAY_TEST_FAIL_AT_EPOCH"  # raise once at this epoch (1-based)
FAIL_MARKER_ENV = "GLYPHRAY_TEST_FAIL_MARKER"  # file that records the failure happened, so it happens once


def maybe_inject_failure(epoch: int, is_main: bool) -> None:
    """Raise on rank 0 at epoch `FAIL_AT_EPOCH_ENV` unless the marker file says it already did."""
    fail_at, marker = os.environ.get(FAIL_AT_EPOCH_ENV), os.environ.get(FAIL_MARKER_ENV)
    if not (is_main and fail_at and marker) or int(fail_at) != epoch + 1 or Path(marker).exists():
        return
    Path(marker).write_text(f"failed at epoch {epoch + 1}\n")
    raise RuntimeError(f"injected failure at epoch {epoch + 1} ({FAIL_AT_EPOCH_ENV})")
