"""The plate alphabet (0-9A-Z) and the two Brazilian layouts.

`L` marks a letter slot, `N` a digit slot. Brazilian plates are `LLLNNNN`; Mercosur plates `LLLNLNN`.
"""

from __future__ import annotations

import string

DIGITS = string.digits
LETTERS = string.ascii_uppercase
CHARSET = DIGITS + LETTERS  # index = class id
CHAR_TO_INDEX = {char: index for index, char in enumerate(CHARSET)}
PLATE_LENGTH = 7

LAYOUT_PATTERNS: dict[str, str] = {"Brazilian": "LLLNNNN", "Mercosur": "LLLNLNN"}
_LAYOUT_ALIASES = {name.lower(): name for name in LAYOUT_PATTERNS} | {"mercocur": "Mercosur"}


def canonical_layout(name: str) -> str:
    """'brazilian' / 'Brazilian' -> 'Brazilian'; raises ValueError for anything else."""
    try:
        return _LAYOUT_ALIASES[str(name).strip().lower()]
    except KeyError:
        raise ValueError(f"unknown plate layout {name!r} (expected one of {sorted(LAYOUT_PATTERNS)})") from None


def layout_problem(text: str, layout: str) -> str | None:
    """Why `text` does not fit `layout`, or None when it fits."""
    pattern = LAYOUT_PATTERNS[canonical_layout(layout)]
    if len(text) != len(pattern):
        return f"plate text {text!r} has {len(text)} characters, layout {layout} needs {len(pattern)} ({pattern})"
    for position, (char, slot) in enumerate(zip(text, pattern)):
        allowed = LETTERS if slot == "L" else DIGITS
        if char not in allowed:
            kind = "letter" if slot == "L" else "digit"
            return f"plate text {text!r}: position {position + 1} must be a {kind} for layout {layout} ({pattern})"
    return None


def letter_slot_mask(layout: str) -> list[bool]:
    """True where the layout wants a letter, False where it wants a digit."""
    return [slot == "L" for slot in LAYOUT_PATTERNS[canonical_layout(layout)]]


def encode(text: str) -> list[int]:
    return [CHAR_TO_INDEX[char] for char in text]


def decode(indices) -> str:
    return "".join(CHARSET[int(index)] for index in indices)
