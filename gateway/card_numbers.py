"""Card numbers must never cross the gateway: only payment processors' tokens may (PCI).

`contains_card_number` looks through every string of a payment's input for 13 to 19 digits,
alone or split by spaces or dashes, that pass the Luhn check — what a primary account number
looks like. A payment where one turns up is refused before anything else happens; the
refusal names the field, never the value, and nothing of it is logged, stored or sent on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

MIN_DIGITS, MAX_DIGITS = 13, 19
# Digit groups joined by at most one separator each: "4111 1111 1111 1111", "4111-1111-…", "4111111111111111".
_RUN = re.compile(r"\d(?:[ \-]?\d)+")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        n = ord(char) - 48
        if index % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _candidates(text: str) -> Iterator[str]:
    for match in _RUN.finditer(text):
        digits = re.sub(r"[ \-]", "", match.group())
        if len(digits) < MIN_DIGITS:
            continue
        if len(digits) <= MAX_DIGITS:
            yield digits
            continue
        # A longer run may hide a card number inside it (glued to other digits): try every window.
        for size in range(MIN_DIGITS, MAX_DIGITS + 1):
            for start in range(len(digits) - size + 1):
                yield digits[start:start + size]


def looks_like_card_number(text: str) -> bool:
    return any(luhn_valid(digits) for digits in _candidates(text))


def card_number_path(value: Any, path: str = "input") -> str | None:
    """The path of the first string in `value` (nested mappings, lists, objects' fields) that holds
    something like a card number, or None."""
    if isinstance(value, str):
        return path if looks_like_card_number(value) else None
    if isinstance(value, Mapping):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    elif hasattr(value, "__dict__"):
        items = vars(value).items()
    else:
        return None
    for key, item in items:
        found = card_number_path(item, f"{path}.{key}")
        if found is not None:
            return found
    return None
