"""Is a document DATEX II v3.7? The official XML Schemas say, through xmlschema (a maintained validator).

    findings(document, expect=None)   what does not conform, each a `Finding` (where in the
                                      document, and what is wrong); an empty list means it conforms
    check_exchange(base_url, request, response)   one pull as it went (parkgate probe)

The schemas are the published files in `schemas/` (entry point `DATEXII_3_D2Payload.xsd`, which
imports the rest; provenance in `schemas/README.md`), loaded once per process (a second or two).
`expect` names the publication a URL should serve (`wire.TABLE_PUBLICATION`,
`wire.STATUS_PUBLICATION`): a valid document of another type is a finding too.

The tests check every document the simulator serves with it, and so can an operator's probe of a
real publisher: the document is parsed with entities and external resources refused.
"""

from __future__ import annotations

import functools
from pathlib import Path

import httpx
import xmlschema

from adapters.conformance import Finding, path_below
from adapters.datex2.wire import (
    PUBLICATIONS,
    STATUS_PUBLICATION,
    TABLE_PUBLICATION,
    DocumentError,
    parse_document,
    publication_type,
)

SCHEMAS = Path(__file__).resolve().parent / "schemas"
ENTRY_POINT = SCHEMAS / "DATEXII_3_D2Payload.xsd"
#: findings reported per document at most: past that, the first ones say enough
MAX_FINDINGS = 50


@functools.cache
def schema() -> xmlschema.XMLSchema:
    """The DATEX II v3.7 schema, built from the files in `schemas/` and nothing outside them."""
    return xmlschema.XMLSchema(str(ENTRY_POINT), allow="sandbox")


def findings(document: bytes, expect: str | None = None) -> list[Finding]:
    """What in `document` does not conform to DATEX II v3.7 (and, with `expect`, to that publication)."""
    try:
        root = parse_document(document)  # refuses DTDs before the validator sees the document
    except DocumentError as exc:
        return [Finding("/", str(exc))]
    found: list[Finding] = []
    resource = xmlschema.XMLResource(document, allow="none", defuse="always")
    for error in schema().iter_errors(resource):
        found.append(Finding(error.path or "/", error.reason or str(error.message)))
        if len(found) >= MAX_FINDINGS:
            break
    if expect is not None and publication_type(root) != expect:
        actual = publication_type(root) or root.tag
        found.append(Finding("/", f"expected a d2:payload of type {_local(expect)}, got {_local(actual)}"))
    return found


#: the publication each of the standard paths serves, where a publisher uses them
_EXPECTED = {PUBLICATIONS["table"]: TABLE_PUBLICATION, PUBLICATIONS["status"]: STATUS_PUBLICATION}


def check_exchange(base_url: str, request: httpx.Request, response: httpx.Response) -> list[Finding]:
    """One pull from a DATEX II publisher whose documents hang from `base_url`: a document that
    conforms (of the publication its path names, where it is one of ours), or a 304 to a
    conditional request."""
    if response.status_code == 304:
        if "if-modified-since" not in request.headers:
            return [Finding("response", "304 Not Modified to a request that was not conditional")]
        return []
    if response.status_code != 200:
        return [Finding("response", f"HTTP {response.status_code}, not a publication")]
    return findings(response.content, _EXPECTED.get(path_below(base_url, request)))


def _local(clark: str) -> str:
    return clark.rpartition("}")[2]
