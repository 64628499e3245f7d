"""Readings -> class indices for 10, 100 and 11 classes."""

from __future__ import annotations

import pytest

from digits.data.labels import LabelError, class_index, class_names


@pytest.mark.parametrize(
    "reading, nb_classes, expected",
    [
        ("5", 10, 5),
        ("0", 10, 0),
        ("9.9", 10, 9),
        ("5.1", 10, 5),
        ("5.1", 100, 51),
        ("5", 100, 50),
        ("0.0", 100, 0),
        ("9.9", 100, 99),
        ("2.25", 100, 22),
        ("7", 11, 7),
        ("N", 11, 10),
        ("n", 11, 10),
        ("10", 11, 10),
    ],
)
def test_reading_maps_to_class(reading, nb_classes, expected):
    assert class_index(reading, nb_classes) == expected


@pytest.mark.parametrize(
    "reading, nb_classes",
    [
        ("10", 10),
        ("N", 10),
        ("N", 100),
        ("-1", 10),
        ("x", 10),
        ("9.96", 100),
        ("10.5", 11),
        ("nan", 10),
        ("", 10),
    ],
)
def test_out_of_range_or_malformed_reading_is_rejected(reading, nb_classes):
    with pytest.raises(LabelError):
        class_index(reading, nb_classes)


def test_class_names_match_class_count():
    assert class_names(10)[9] == "9"
    assert class_names(100)[51] == "5.1" and len(class_names(100)) == 100
    assert class_names(11)[10] == "N"
