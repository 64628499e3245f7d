"""Readings -> class indices: the one place that knows what a label means for 10, 100 and 11 classes.

A reading is what a meter wheel shows: `5`, `5.1` (between 5 and 6), or `N` (not a digit / transition).
10 classes keep the digit (floor of the reading), 100 classes keep tenths (round(reading * 10)), 11 classes
are the 10 digits plus `N` (also written `10`) as class 10.
"""

from __future__ import annotations

import math

NOT_A_DIGIT = "N"


class LabelError(ValueError):
    """A label that cannot be a class for this class count; the caller adds the file and line."""


def class_index(reading: str, nb_classes: int) -> int:
    """The class of a reading; raises `LabelError` with a short reason when it is out of range."""
    text = reading.strip()
    if nb_classes == 11 and text.upper() == NOT_A_DIGIT:
        return 10
    if text.upper() == NOT_A_DIGIT:
        raise LabelError(f"label {text!r} (not-a-digit) needs nb_classes 11, not {nb_classes}")
    try:
        value = float(text)
    except ValueError:
        raise LabelError(
            f"label {text!r} is not a reading (expected a number like 5 or 5.1{', or N' if nb_classes == 11 else ''})"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise LabelError(f"label {text!r} is out of range for {nb_classes} classes")
    if nb_classes == 100:
        index = int(round(value * 10))
    elif nb_classes == 11 and value == 10:
        index = 10
    else:
        index = int(math.floor(value))
    if index >= nb_classes or (nb_classes == 11 and index == 10 and value != 10):
        raise LabelError(f"label {text!r} is out of range for {nb_classes} classes")
    return index


def class_names(nb_classes: int) -> list[str]:
    """Human-readable name of each class index (`0`..`9`, `0.0`..`9.9`, or `0`..`9`, `N`)."""
    if nb_classes == 100:
        return [f"{index / 10:.1f}" for index in range(100)]
    names = [str(index) for index in range(10)]
    return names + [NOT_A_DIGIT] if nb_classes == 11 else names
