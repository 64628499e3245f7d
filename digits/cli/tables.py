"""Plain-text tables for the terminal: numeric columns right-aligned, text columns left-aligned."""

from __future__ import annotations

from collections.abc import Sequence


def _numeric(cell: str) -> bool:
    return cell == "-" or cell.replace(".", "", 1).lstrip("-").isdigit()


def format_table(rows: Sequence[Sequence[str]]) -> str:
    """`rows[0]` is the header; a column is numeric when every data cell in it is a number (or `-`)."""
    header, body = rows[0], rows[1:]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    numeric = [bool(body) and all(_numeric(row[i]) for row in body) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(w) if right else cell.ljust(w) for cell, w, right in zip(row, widths, numeric)
        ).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(row) for row in body)])
