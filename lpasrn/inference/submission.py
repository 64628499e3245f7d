"""The ICPR 2026 LRLPR submission file: one line per track, `track_id,plate_text;confidence`.

    track_00001,ABC1234;0.9731
    Scenario-A/Mercosur/track_00042,BRA2E19;0.4120

The track id is the track folder's path relative to the test folder (its name, for the competition's flat layout);
it holds no comma, semicolon or line break. The plate text holds the plate characters 0-9A-Z, and the confidence
is a number in [0, 1] (written with six decimals). Writing is atomic; reading checks every line and names the
file and line of the first problem.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from experiments.errors import UserError
from experiments.io import atomic_write_text

_TEXT = re.compile(r"^[0-9A-Z]*$")
_FORBIDDEN_IN_ID = re.compile(r"[,;\r\n]")


@dataclass(frozen=True)
class TrackPrediction:
    """One track's plate and how sure the reader is of it."""

    track_id: str
    text: str
    confidence: float


def _problem(prediction: TrackPrediction) -> str | None:
    if not prediction.track_id.strip() or _FORBIDDEN_IN_ID.search(prediction.track_id):
        return f"track id {prediction.track_id!r} must be non-empty without ',', ';' or line breaks"
    if prediction.track_id != prediction.track_id.strip():
        return f"track id {prediction.track_id!r} has leading or trailing spaces"
    if not _TEXT.match(prediction.text):
        return f"plate text {prediction.text!r} must hold only 0-9 and A-Z"
    if not (math.isfinite(prediction.confidence) and 0.0 <= prediction.confidence <= 1.0):
        return f"confidence {prediction.confidence!r} must be a number in [0, 1]"
    return None


def format_line(prediction: TrackPrediction) -> str:
    """`track_id,plate_text;confidence` (no line break)."""
    problem = _problem(prediction)
    if problem:
        raise ValueError(problem)
    return f"{prediction.track_id},{prediction.text};{prediction.confidence:.6f}"


def parse_line(line: str, where: str = "line") -> TrackPrediction:
    """One submission line back into a prediction; a malformed line is a UserError naming `where`."""
    if "," not in line or ";" not in line.split(",", 1)[1]:
        raise UserError(f"{where}: expected 'track_id,plate_text;confidence', got {line!r}")
    track_id, rest = line.split(",", 1)
    text, confidence = rest.rsplit(";", 1)
    try:
        value = float(confidence)
    except ValueError:
        raise UserError(f"{where}: confidence {confidence!r} is not a number") from None
    prediction = TrackPrediction(track_id, text, value)
    problem = _problem(prediction)
    if problem:
        raise UserError(f"{where}: {problem}")
    return prediction


def write_submission(path: str | Path, predictions: Iterable[TrackPrediction]) -> Path:
    """Write the file atomically (a killed run leaves no half-written submission); one line per track, in order."""
    lines, seen = [], set()
    for prediction in predictions:
        if prediction.track_id in seen:
            raise ValueError(f"track {prediction.track_id!r} appears twice")
        seen.add(prediction.track_id)
        lines.append(format_line(prediction))
    return atomic_write_text(path, "".join(f"{line}\n" for line in lines))


def read_submission(path: str | Path) -> list[TrackPrediction]:
    """Every line of a submission file (blank lines skipped); a duplicate track or a bad line is a UserError."""
    path = Path(path)
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: submission file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read ({err})") from None
    predictions, seen = [], set()
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        prediction = parse_line(line.strip(), f"{path}:{number}")
        if prediction.track_id in seen:
            raise UserError(f"{path}:{number}: track {prediction.track_id!r} appears twice")
        seen.add(prediction.track_id)
        predictions.append(prediction)
    return predictions
