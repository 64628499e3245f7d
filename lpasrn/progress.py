"""Progress where no bar can be drawn: output to a file or a pipe, and Ray Train workers (Ray forwards their log
lines to the driver, but not a terminal bar). An epoch on a CPU takes minutes; a silent log for that long looks
like a hang, so a line every few seconds says how far the epoch is and how fast it goes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any

logger = logging.getLogger("lpasrn.training.engine")


class ProgressLines:
    """Iterates `batches` and logs `description: step i/N (p%), <postfix>, <rate> steps/s` every `every_s` seconds.

    Offers tqdm's `set_postfix`, so the training loop treats a bar and these lines alike.
    """

    def __init__(
        self, batches: Iterable[Any], description: str, every_s: float, clock: Callable[[], float] = time.monotonic
    ):
        self.batches, self.description, self.every_s, self.clock = batches, description, every_s, clock
        self.postfix: dict[str, Any] = {}

    def set_postfix(self, **values: Any) -> None:
        self.postfix = values

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        total = len(self.batches) if isinstance(self.batches, Sized) else None
        start = last = self.clock()
        for step, batch in enumerate(self.batches, start=1):
            yield batch
            now = self.clock()
            if now - last >= self.every_s:
                last = now
                logger.info("%s", self._line(step, total, step / max(now - start, 1e-9)))

    def _line(self, step: int, total: int | None, rate: float) -> str:
        where = f"step {step}/{total} ({step / total:.0%})" if total else f"step {step}"
        extras = "".join(f", {key} {value}" for key, value in self.postfix.items())
        return f"{self.description}: {where}{extras}, {rate:.2f} steps/s"
