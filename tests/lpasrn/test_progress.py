"""Progress lines where no bar can be drawn (files, pipes, Ray Train workers)."""

from __future__ import annotations

import logging

from lpasrn.progress import ProgressLines


def test_a_line_every_interval_says_how_far_and_how_fast(caplog):
    ticks = iter([0.0, 10.0, 31.0, 40.0, 62.0, 70.0])
    progress = ProgressLines(range(5), "stage1-warmup epoch 2", every_s=30.0, clock=lambda: next(ticks))
    with caplog.at_level(logging.INFO, logger="lpasrn.training.engine"):
        for batch in progress:
            progress.set_postfix(loss=f"{batch / 10:.4f}")
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "stage1-warmup epoch 2: step 2/5 (40%), loss 0.1000, 0.06 steps/s",
        "stage1-warmup epoch 2: step 4/5 (80%), loss 0.3000, 0.06 steps/s",
    ]


def test_every_batch_comes_through_unchanged():
    progress = ProgressLines(["a", "b"], "x", every_s=1e9)
    assert list(progress) == ["a", "b"] and len(progress) == 2
