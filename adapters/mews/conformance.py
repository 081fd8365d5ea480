"""Does a message conform to the Mews Connector API? Its reference pages publish no schema: what they
give is one example per message, copied verbatim into `reference/` (with their provenance), so a
message is judged by the structure of the documented example — a generic comparison, no schema.

    mismatches(example, actual)                 what differs, one line per place
    check_exchange(base_url, request, response) one Connector API call as it went (parkgate probe):
                                                the request against the documented request (it may
                                                leave filters out), the answer against the documented answer

The reference pages give one example per message. `mismatches(example, actual)` walks both: the
same keys in every object, the same JSON type for every value (a number is a number, whole or
not), every list item shaped like the example's first, and strings of the same kind where the
example's is recognisably one (a UTC instant `YYYY-MM-DDThh:mm:ssZ`, a UUID). A null on either
side matches anything: an example's null does not say the type, and an example cannot say which of
its filled fields are optional, so nullability is not checked here.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import httpx
import orjson

from adapters.conformance import Finding, path_below

#: the reference pages' JSON examples, named by operation (`reservations-getAll-2023-06-06.response.json`)
REFERENCE = Path(__file__).resolve().parent / "reference"
#: where the operations hang below a PlatformAddress
OPERATIONS_ROOT = "/api/connector/v1/"

KINDS = {
    "a UTC instant": re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"),
    "a UUID": re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
}


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


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


@functools.cache
def example(name: str) -> Any:
    """A documented example by its file name without `.json`, or None where the pages give none."""
    path = REFERENCE / f"{name}.json"
    return orjson.loads(path.read_bytes()) if path.exists() else None


def check_exchange(base_url: str, request: httpx.Request, response: httpx.Response) -> list[Finding]:
    """One Connector API operation (a POST to `{base_url}/api/connector/v1/<resource>/<action>`)."""
    path = path_below(base_url, request)
    if not path.startswith(OPERATIONS_ROOT):
        return [Finding("request", f"{path} is not a Connector API operation ({OPERATIONS_ROOT}…)")]
    name = path[len(OPERATIONS_ROOT):].strip("/").replace("/", "-")
    if response.status_code != 200:
        return [Finding("response", f"HTTP {response.status_code}")]
    found: list[Finding] = []
    for side, body, subset in (("request", request.content, True), ("response", response.content, False)):
        documented = example(f"{name}.{side}")
        if documented is None:
            continue
        if side == "request" and isinstance(documented, dict) and "Limitation" in documented:
            # paging is documented once, for every operation (guidelines/pagination.md): a later
            # page's request carries the Cursor the operation's own example leaves out
            documented = {**documented, "Limitation": {**example("pagination.request")["Limitation"],
                                                       **documented["Limitation"]}}
        try:
            actual = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            found.append(Finding(f"{side} body", f"not JSON: {exc}"))
            continue
        if side == "request":  # the tokens are in the body, and never in a finding
            actual = {k: v for k, v in actual.items() if k not in ("ClientToken", "AccessToken")} if isinstance(
                actual, dict) else actual
        found += [Finding(f"{side} body", line) for line in mismatches(documented, actual, subset=subset)]
    return found
