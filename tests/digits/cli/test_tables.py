"""Terminal tables: numbers right-aligned under their header, text left-aligned, missing values as `-`."""

from __future__ import annotations

from digits.cli.tables import format_table


def test_numeric_columns_are_right_aligned_and_text_left_aligned():
    table = format_table([("name", "params", "acc"), ("v4", "81642", "0.9944"), ("validator", "732586", "-")])
    lines = table.splitlines()
    assert lines[0] == "name       params     acc"
    assert lines[1] == "---------  ------  ------"
    assert lines[2] == "v4          81642  0.9944"
    assert lines[3] == "validator  732586       -"


def test_a_column_with_any_text_cell_stays_left_aligned():
    lines = format_table([("a", "b"), ("x", "12"), ("y", "yes")]).splitlines()
    assert lines[2] == "x  12" and lines[3] == "y  yes"
