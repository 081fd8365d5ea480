"""Does a vendor's message conform to the published standard its dialect speaks? The shared answer.

A dialect that speaks a standard checks messages against the standard's own document with a
maintained validator, in its `conformance.py`: APDS with openapi-core over the APDS OpenAPI
document, DATEX II with xmlschema over the official XML Schemas, the Mews Connector API against the
reference pages' own examples. Each also offers `check_exchange(base_url, request, response)`: one
HTTP exchange with a system whose paths hang from `base_url`, judged as a whole (what was sent and
what came back). `parkgate probe` (gateway/probe.py) calls it for every call it makes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

__all__ = ["ExchangeCheck", "Finding", "path_below"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One way a message does not conform: where in it (e.g. `response body: data/0/meta`) and the problem."""

    where: str
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


#: (the system's base URL, the request sent, the response received) -> what does not conform
ExchangeCheck = Callable[[str, httpx.Request, httpx.Response], list[Finding]]


def path_below(base_url: str, request: httpx.Request) -> str:
    """The request's path with the base URL's path taken off: the path as the standard names it."""
    root = urlsplit(base_url).path.rstrip("/")
    path = request.url.path
    return path[len(root):] or "/" if root and path.startswith(root) else path
