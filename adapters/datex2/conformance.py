"""Is a document DATEX II v3.7? The official XML Schemas say, through xmlschema (a maintained validator).

    findings(document, expect=None)   what does not conform, each a `Finding` (where in the
                                      document, and what is wrong); an empty list means it conforms

The schemas are the published files in `schemas/` (entry point `DATEXII_3_D2Payload.xsd`, which
imports the rest; provenance in `schemas/README.md`), loaded once per process (a second or two).
`expect` names the publication a URL should serve (`wire.TABLE_PUBLICATION`,
`wire.STATUS_PUBLICATION`): a valid document of another type is a finding too.

The tests check every document the simulator serves with it, and so can an operator's probe of a
real publisher: the document is parsed with entities and external resources refused.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import xmlschema

from adapters.datex2.wire import DocumentError, parse_document, publication_type

SCHEMAS = Path(__file__).resolve().parent / "schemas"
ENTRY_POINT = SCHEMAS / "DATEXII_3_D2Payload.xsd"
#: findings reported per document at most: past that, the first ones say enough
MAX_FINDINGS = 50


@dataclass(frozen=True, slots=True)
class Finding:
    """One way a document does not conform: where (a path into the document) and what is wrong."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


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


def _local(clark: str) -> str:
    return clark.rpartition("}")[2]
