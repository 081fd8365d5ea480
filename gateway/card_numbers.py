"""Card numbers must never cross the gateway: only payment processors' tokens may (PCI).

What counts as a card number, in any spelling:

- digits in groups joined by separators — any run of one to three characters that are neither
  letters nor digits (spaces of every kind, dashes, dots, underscores, colons, slashes, " - ",
  doubled ones…), so no list of separators can be incomplete; Unicode digits count as digits;
- any stretch of whole groups of such a chain holding 13 to 19 digits that pass the Luhn
  check and do not start with 0 (no card issuer's number does), wherever it sits in the text
  (`tok_4111.1111.1111.1111`, `4111111111111111 12/29 123`);
- except a stretch glued to letters on both sides (`…fa51b46861f672…`): that is how digits sit
  in hex ids and hashes, which clients send back to us, and no one writes a card number that way;
- inside a UUID, only whole groups between its dashes (`41111111-1111-1111-…`): a random UUID
  holds a Luhn-valid stretch of digits between hex letters about once in 350, a whole-group one
  about once in 7,000. So a UUID is screened like anything else (there is no exemption: a UUID
  built around a card number is refused), at the price of refusing one random UUID in ~7,000 —
  the refusal says so, and a new key or token is the answer;
- ISO 8601 dates and times (`2026-12-01`, `09:00:00.123456+01:00`) are read as what they are,
  not as digits: a timestamp would otherwise look like a card one time in five.

`card_spans` finds them in time linear in the text; `redact` blanks them out of anything that
quotes a client's input; `card_number_path` looks through nested input (keys too).
"""

from __future__ import annotations

import re
import secrets
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from itertools import accumulate
from typing import Any

MIN_DIGITS, MAX_DIGITS = 13, 19
MAX_SCREENED_DIGITS = 5_000
REDACTED = "[redacted]"

# Digit groups joined by short runs of separators (neither letter nor digit; `_` is a \w).
_CHAIN = re.compile(r"\d++(?:[\W_]{1,3}+\d++)*+")  # possessive: no backtracking
_GROUP = re.compile(r"\d+")
_DIGIT = re.compile(r"\d")
_UUID = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}(?![0-9A-Fa-f])")
_DATE = re.compile(r"(?<!\d)(?:19|20|21)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?!\d)")
_TIME = re.compile(r"(?<!\d)(?:[01]\d|2[0-3]):[0-5]\d(?::(?:[0-5]\d|60)(?:[.,]\d{1,9})?)?"
                   r"(?:Z|[+-](?:[01]\d|2[0-3])(?::?[0-5]\d)?)?(?!\d)")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        n = int(char)  # any Unicode decimal digit
        if index % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


class ScreenExhausted(Exception):
    """More digits in long runs than one request may hold (`MAX_SCREENED_DIGITS`)."""


class Budget:
    """Digits one request may make the screen look at: checking windows is per-digit work in
    Python, so a megabyte of digits must not buy a second of CPU. No argument of the API takes
    anywhere near this many digits."""

    __slots__ = ("left",)

    def __init__(self, digits: int = 0) -> None:
        self.left = digits or MAX_SCREENED_DIGITS

    def spend(self, digits: int) -> None:
        self.left -= digits
        self.check(0)

    def check(self, digits: int) -> None:
        """ScreenExhausted if `digits` more would be over the budget."""
        if digits > self.left or self.left < 0:
            raise ScreenExhausted(f"more than {MAX_SCREENED_DIGITS} digits in runs of {MIN_DIGITS} or more")


def card_spans(text: str, budget: Budget | None = None) -> Iterator[tuple[int, int]]:
    """(start, end) of every card-like stretch in `text`, left to right; linear in its length."""
    if not _GROUP.search(text):
        return
    chains = [m.span() for m in _CHAIN.finditer(text) if m.end() - m.start() >= MIN_DIGITS]
    if not chains:
        return
    budget = budget or Budget()
    # A chain is at least a quarter digits (separator runs are at most 3 long): refuse a huge one
    # before the slower passes below look at it.
    budget.check(sum(end - start for start, end in chains) // 4)
    masked = _masked(text, chains)
    uuids = [m.span() for m in _UUID.finditer(masked)]
    for chain_start, chain_end in chains:
        for chain in _CHAIN.finditer(masked, chain_start, chain_end):  # a date or time may split it
            if chain.end() - chain.start() >= MIN_DIGITS:
                for segment in _segments(_GROUP.finditer(masked, chain.start(), chain.end()), budget):
                    yield from _stretches(masked, segment, uuids)


def _masked(text: str, chains: list[tuple[int, int]]) -> str:
    """`text` with the dates and times in `chains` turned into letters of the same length."""
    pieces, last = [], 0
    for start, end in chains:
        piece = text[start:end]
        for pattern in (_DATE, _TIME):
            piece = pattern.sub(lambda m: "x" * len(m.group()), piece)
        pieces += [text[last:start], piece]
        last = end
    return "".join(pieces) + text[last:]


def _segments(groups: Iterator[re.Match[str]], budget: Budget) -> Iterator[list[tuple[int, int]]]:
    """Runs of consecutive groups that can hold a card (a group longer than a card ends one),
    taken lazily so the budget stops a huge chain early."""
    run: list[tuple[int, int]] = []
    digits = 0
    for group in groups:
        start, end = group.span()
        if end - start > MAX_DIGITS:
            if digits >= MIN_DIGITS:
                yield run
            run, digits = [], 0
            continue
        budget.spend(end - start)
        run.append((start, end))
        digits += end - start
    if digits >= MIN_DIGITS:
        yield run


def _stretches(text: str, groups: list[tuple[int, int]], uuids: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """The card-like stretches of whole groups in one segment."""
    digits = "".join(text[start:end] for start, end in groups)
    if not digits.isascii():  # other scripts' decimal digits
        digits = "".join(str(int(char)) for char in digits)
    luhn = _LuhnWindows(digits)
    ends = list(accumulate(end - start for start, end in groups))  # digits up to each group's end
    for first in range(len(groups)):
        begin = ends[first - 1] if first else 0
        if digits[begin] == "0":  # no card number starts with 0 (ISO/IEC 7812: industry 0 issues none)
            continue
        for last in range(first, len(groups)):
            size = ends[last] - begin
            if size > MAX_DIGITS:
                break
            if size >= MIN_DIGITS and luhn.valid(begin, ends[last]):
                start, end = groups[first][0], groups[last][1]
                if _stands_apart(text, start, end, uuids):
                    yield start, end


_VALUE = bytes.maketrans(b"0123456789", bytes(range(10)))
_DOUBLED = bytes.maketrans(b"0123456789", bytes([0, 2, 4, 6, 8, 1, 3, 5, 7, 9]))


class _LuhnWindows:
    """The Luhn check of any window of one digit string in O(1), from prefix sums (built by C
    loops: `translate`, slicing, `accumulate`): which digits are doubled depends only on their
    distance from the window's end."""

    __slots__ = ("doubled", "plain")

    def __init__(self, digits: str) -> None:
        raw = digits.encode()  # ASCII digits
        # plain[p][k]: the sum of the digits i < k with i % 2 == p; doubled[p][k]: the same, doubled Luhn-style
        self.plain = _by_parity(raw.translate(_VALUE))
        self.doubled = _by_parity(raw.translate(_DOUBLED))

    def valid(self, begin: int, end: int) -> bool:
        kept = (end - 1) % 2  # the last digit and every second one before it are kept as they are
        total = (self.plain[kept][end] - self.plain[kept][begin]
                 + self.doubled[1 - kept][end] - self.doubled[1 - kept][begin])
        return total % 10 == 0


def _by_parity(values: bytes) -> tuple[list[int], list[int]]:
    sums = []
    for parity in (0, 1):
        only = bytearray(len(values))
        only[parity::2] = values[parity::2]
        sums.append(list(accumulate(only, initial=0)))
    return sums[0], sums[1]


def _stands_apart(text: str, start: int, end: int, uuids: list[tuple[int, int]]) -> bool:
    glued_left = start > 0 and text[start - 1].isalpha()
    glued_right = end < len(text) and text[end].isalpha()
    index = bisect_right(uuids, (start, len(text))) - 1  # the last UUID starting at or before `start`
    if index >= 0 and end <= uuids[index][1]:
        return not glued_left and not glued_right  # whole groups of the UUID only
    return not (glued_left and glued_right)


def may_hold_card(text: str) -> bool:
    """False when `text` has no run of digits and separators long enough to be a card number (a
    quick test, by the regular expression engine alone)."""
    if _DIGIT.search(text) is None:  # most texts (every request's path, `/graphql`): no generator made
        return False
    return any(m.end() - m.start() >= MIN_DIGITS for m in _CHAIN.finditer(text))


def looks_like_card_number(text: str, budget: Budget | None = None) -> bool:
    return next(card_spans(text, budget), None) is not None


def redact(text: str) -> str:
    """`text` with every card-like stretch replaced, for anything that quotes a client's input
    (every run of digits, when there are too many to screen)."""
    merged: list[list[int]] = []  # stretches of one chain overlap: blank out their union
    try:
        for start, end in card_spans(text):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
    except ScreenExhausted:
        return _CHAIN.sub(REDACTED, text)
    if not merged:
        return text
    out, last = [], 0
    for start, end in merged:
        out += [text[last:start], REDACTED]
        last = end
    return "".join(out) + text[last:]


def card_number_path(value: Any, path: str = "", budget: Budget | None = None) -> str | None:
    """The dotted path of the first string (or number, or mapping key) in `value` — nested
    mappings, lists and objects' fields — that holds something like a card number, or None.
    ScreenExhausted when `value` holds more digits than one request may."""
    budget = budget or Budget()
    if isinstance(value, str):
        return path if looks_like_card_number(value, budget) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return path if looks_like_card_number(repr(value), budget) else None
    if isinstance(value, Mapping):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    elif hasattr(value, "__dict__"):
        items = vars(value).items()
    else:
        return None
    for key, item in items:
        here = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and looks_like_card_number(key, budget):
            return here
        found = card_number_path(item, here, budget)
        if found is not None:
            return found
    return None


def new_id(prefix: str, nbytes: int = 8) -> str:
    """A random id, `<prefix>_<hex>`, that the screen never refuses: clients send ids back, and one
    in a few thousand random hex strings holds a Luhn-valid run of digits."""
    while looks_like_card_number(candidate := f"{prefix}_{secrets.token_hex(nbytes)}"):
        pass
    return candidate
