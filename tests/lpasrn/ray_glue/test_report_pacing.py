"""Which epochs a Ray Train worker reports: not faster than Ray's controller reads them, and always a stage's last."""

from __future__ import annotations

import pytest

from lpasrn.ray_glue.report_pacing import ReportPacer, poll_interval_s


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def reported_epochs(epoch_length: float, epochs: int, interval_s: float = 2.0) -> list[int]:
    clock = FakeClock()
    pacer, reported = ReportPacer(interval_s, clock), []
    for epoch in range(1, epochs + 1):
        clock.now += epoch_length
        if pacer.due(last=epoch == epochs):
            pacer.reported()
            reported.append(epoch)
    return reported


def test_epochs_longer_than_the_interval_are_all_reported():
    assert reported_epochs(epoch_length=2.5, epochs=4) == [1, 2, 3, 4]


def test_short_epochs_are_reported_once_per_interval_and_the_last_always():
    assert reported_epochs(epoch_length=0.75, epochs=8) == [1, 4, 7, 8]


def test_one_pacer_spans_stages_so_a_new_stage_waits_for_the_interval_too():
    clock = FakeClock()
    pacer = ReportPacer(2.0, clock)
    assert pacer.due(last=True)  # the first stage's only epoch
    pacer.reported()
    clock.now += 0.5
    assert not pacer.due(last=False), "the next stage's first epoch came within the interval"
    assert pacer.due(last=True), "a stage's last epoch is reported whatever the clock says"


@pytest.mark.parametrize(("value", "expected"), [(None, 2.0), ("0.5", 0.5)])
def test_the_interval_is_ray_trains_health_check_interval(monkeypatch, value, expected):
    name = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
    if value is None:
        monkeypatch.delenv(name, raising=False)
    else:
        monkeypatch.setenv(name, value)
    assert poll_interval_s() == expected
