"""Card numbers must never cross the gateway: only payment processors' tokens may (PCI).

`card_number_path` looks through every string of a payment's input for 13 to 19 digits, alone
or split by spaces or dashes, that pass the Luhn check — what a primary account number looks
like. A payment where one turns up is refused before anything else happens; the refusal names
the field, never the value, and nothing of it is logged, stored or sent on. `redact` blanks
such numbers out of error messages that quote a client's input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MIN_DIGITS, MAX_DIGITS = 13, 19
# Digit groups joined by at most one separator each: "4111 1111 1111 1111", "4111-1111-…", "4111111111111111".
# A run is taken whole: a longer run of digits is some other number, not a card number inside it.
_RUN = re.compile(r"\d(?:[ \-]?\d)*")
_SEPARATORS = re.compile(r"[ \-]")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        n = ord(char) - 48
        if index % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _card_like(run: str) -> bool:
    digits = _SEPARATORS.sub("", run)
    return MIN_DIGITS <= len(digits) <= MAX_DIGITS and luhn_valid(digits)


def looks_like_card_number(text: str) -> bool:
    """True when `text` holds a card-like number; linear in its length. A UUID (what clients use as
    idempotency keys) is not one, whatever digits its groups happen to hold."""
    if _UUID.fullmatch(text):
        return False
    return any(_card_like(match.group()) for match in _RUN.finditer(text))


def redact(text: str) -> str:
    """`text` with every card-like number replaced, for messages that quote a client's input."""
    return _RUN.sub(lambda m: "[redacted]" if _card_like(m.group()) else m.group(), text)


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
