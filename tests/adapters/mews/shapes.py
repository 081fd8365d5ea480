"""Does a JSON document have the structure of a documented example? A generic comparison, no schema.

The reference pages give one example per message. `mismatches(example, actual)` walks both: the
same keys in every object, the same JSON type for every value (a number is a number, whole or
not), every list item shaped like the example's first, and strings of the same kind where the
example's is recognisably one (a UTC instant `YYYY-MM-DDThh:mm:ssZ`, a UUID). A null on either
side matches anything: an example's null does not say the type, and an example cannot say which of
its filled fields are optional, so nullability is not checked here.
"""

from __future__ import annotations

import re
from typing import Any

KINDS = {
    "a UTC instant": re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"),
    "a UUID": re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
}


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def mismatches(example: Any, actual: Any, path: str = "$", *, subset: bool = False) -> list[str]:
    """What differs, one line per place (empty: same structure). `subset`: `actual` may leave
    out keys of the example (a request sends the filters it needs), never add any."""
    if example is None or actual is None:
        return []
    if json_type(example) != json_type(actual):
        return [f"{path}: {json_type(actual)}, documented {json_type(example)}"]
    if isinstance(example, dict):
        found = [f"{path}.{key}: not documented" for key in sorted(actual.keys() - example.keys())]
        if not subset:
            found += [f"{path}.{key}: missing" for key in sorted(example.keys() - actual.keys())]
        for key in sorted(example.keys() & actual.keys()):
            found += mismatches(example[key], actual[key], f"{path}.{key}", subset=subset)
        return found
    if isinstance(example, list):
        if not example:
            return []
        return [line for index, item in enumerate(actual)
                for line in mismatches(example[0], item, f"{path}[{index}]", subset=subset)]
    if isinstance(example, str):
        for kind, pattern in KINDS.items():
            if pattern.fullmatch(example) and not pattern.fullmatch(actual):
                return [f"{path}: {actual!r} is not {kind}, as documented ({example!r})"]
    return []
