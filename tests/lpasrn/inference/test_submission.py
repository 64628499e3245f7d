"""The submission file `track_id,plate_text;confidence`: it round-trips, and bad lines name file and line."""

from __future__ import annotations

import pytest

from experiments.errors import UserError
from lpasrn.inference.submission import TrackPrediction, format_line, read_submission, write_submission


def test_a_submission_round_trips(tmp_path):
    predictions = [
        TrackPrediction("track_00001", "ABC1234", 0.973125),
        TrackPrediction("Scenario-A/Mercosur/track_00042", "BRA2E19", 0.0),
        TrackPrediction("track_00003", "XYZ9876", 1.0),
    ]
    path = write_submission(tmp_path / "out/predictions.txt", predictions)
    assert path.read_text().splitlines() == [
        "track_00001,ABC1234;0.973125",
        "Scenario-A/Mercosur/track_00042,BRA2E19;0.000000",
        "track_00003,XYZ9876;1.000000",
    ]
    assert read_submission(path) == predictions
    assert [p.name for p in path.parent.iterdir()] == ["predictions.txt"]  # no temporary file left behind


@pytest.mark.parametrize(
    "prediction, problem",
    [
        (TrackPrediction("a,b", "ABC1234", 0.5), "must be non-empty without ','"),
        (TrackPrediction("track", "abc1234", 0.5), "must hold only 0-9 and A-Z"),
        (TrackPrediction("track", "ABC1234", 1.5), "must be a number in [0, 1]"),
        (TrackPrediction("track", "ABC1234", float("nan")), "must be a number in [0, 1]"),
    ],
)
def test_a_line_that_would_not_read_back_is_refused(prediction, problem):
    with pytest.raises(ValueError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        format_line(prediction)


def test_a_repeated_track_is_refused_on_writing(tmp_path):
    with pytest.raises(ValueError, match="appears twice"):
        write_submission(tmp_path / "p.txt", [TrackPrediction("t", "ABC1234", 0.5)] * 2)
    assert not (tmp_path / "p.txt").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ("track_1,ABC1234;0.5\ntrack_2 ABC1234 0.5\n", ":2: expected 'track_id,plate_text;confidence'"),
        ("track_1,ABC1234;high\n", ":1: confidence 'high' is not a number"),
        ("track_1,ABC1234;0.5\ntrack_1,ABC1235;0.4\n", ":2: track 'track_1' appears twice"),
    ],
)
def test_a_bad_line_names_the_file_and_line(tmp_path, content, message):
    path = tmp_path / "predictions.txt"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        read_submission(path)


def test_a_missing_submission_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="submission file not found"):
        read_submission(tmp_path / "none.txt")
