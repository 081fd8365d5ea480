"""The DATEX II v3.7 parking wire, shared by the adapter, its simulator and the conformance check.

DATEX II publications are XML documents whose root is `d2:payload`, typed with `xsi:type`
(`prk:ParkingTablePublication`, `prk:ParkingStatusPublication`); every element is qualified by
the namespace of the schema file that declares it (`fac:name` in a `prk:` record, `loc:` inside a
location). A publisher may bind any prefix to a namespace, so names here are Clark names
(`{namespace}local`) and `xsi:type` values are resolved against the prefixes in scope where they
stand (`parse_document` does it while parsing).

Pull over HTTP: each publication is one URL; a client sends `If-Modified-Since` with the
`Last-Modified` it got and a publisher whose document has not changed answers 304 Not Modified.
HTTP dates have whole seconds, so a publisher changes a document at most once a second.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime as _format_http_date
from email.utils import parsedate_to_datetime
from xml.etree import ElementTree
from xml.parsers import expat

NS: dict[str, str] = {
    "d2": "http://datex2.eu/schema/3/d2Payload",
    "com": "http://datex2.eu/schema/3/common",
    "fac": "http://datex2.eu/schema/3/facilities",
    "prk": "http://datex2.eu/schema/3/parking",
    "loc": "http://datex2.eu/schema/3/locationReferencing",
    "locx": "http://datex2.eu/schema/3/locationExtension",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}


def q(prefix: str, local: str) -> str:
    """The Clark name of `prefix:local`, e.g. q("prk", "supply") == "{http://datex2.eu/schema/3/parking}supply"."""
    return f"{{{NS[prefix]}}}{local}"


XSI_TYPE = q("xsi", "type")
PAYLOAD = q("d2", "payload")
TABLE_PUBLICATION = q("prk", "ParkingTablePublication")
STATUS_PUBLICATION = q("prk", "ParkingStatusPublication")

#: where each publication hangs below a publisher's base URL, unless a system's options say
#: otherwise (`table_path`, `status_path`): the sandbox's publisher serves them here
PUBLICATIONS: dict[str, str] = {"table": "/parking/table", "status": "/parking/status"}
MEDIA_TYPE = "application/xml"


class DocumentError(ValueError):
    """A document that is not a readable DATEX II publication at all (as opposed to one bad record)."""


# --- parsing ------------------------------------------------------------------------------


def parse_document(data: bytes) -> ElementTree.Element:
    """The element tree of an XML document, refusing any DTD (DATEX II documents have none, and a
    DTD is how entity-expansion and external-entity attacks come in). Every `xsi:type` value
    is replaced by its Clark name, resolved against the namespace prefixes in scope."""
    builder = ElementTree.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator=" ")
    scopes: list[dict[str, str]] = [{"xml": "http://www.w3.org/XML/1998/namespace"}]
    declared: dict[str, str] = {}

    def start_namespace(prefix: str | None, uri: str) -> None:
        declared[prefix or ""] = uri

    def start(name: str, attributes: dict[str, str]) -> None:
        scope = {**scopes[-1], **declared} if declared else scopes[-1]
        declared.clear()
        scopes.append(scope)
        attrs = {_clark(key): value for key, value in attributes.items()}
        if XSI_TYPE in attrs:
            attrs[XSI_TYPE] = _resolve(attrs[XSI_TYPE], scope)
        builder.start(_clark(name), attrs)

    def end(name: str) -> None:
        scopes.pop()
        builder.end(_clark(name))

    def refuse_dtd(*_: object) -> None:
        raise DocumentError("the document has a DTD; DATEX II documents have none")

    parser.StartNamespaceDeclHandler = start_namespace
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise DocumentError(f"not well-formed XML: {exc}") from None
    return builder.close()


def _clark(name: str) -> str:
    uri, _, local = name.rpartition(" ")
    return f"{{{uri}}}{local}" if uri else local


def _resolve(qname: str, scope: dict[str, str]) -> str:
    prefix, _, local = qname.strip().rpartition(":")
    uri = scope.get(prefix)
    if uri is None:
        return qname  # an undeclared prefix: left as written, so it matches no known type
    return f"{{{uri}}}{local}" if uri else local


def publication_type(root: ElementTree.Element) -> str | None:
    """The resolved `xsi:type` of a `d2:payload` root (None for any other root)."""
    return root.get(XSI_TYPE) if root.tag == PAYLOAD else None


# --- times ---------------------------------------------------------------------------------

_DATETIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})T(?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})(?P<f>\.\d+)?(?P<tz>Z|[+-]\d{2}:\d{2})?"
)


def parse_datetime(text: str | None) -> datetime | None:
    """An `xs:dateTime` as an aware UTC instant; None when absent or when it names no offset (a
    local time of an unknown zone is no instant, and parkgate never guesses one).
    Raises ValueError when it is not an `xs:dateTime` at all."""
    if text is None:
        return None
    match = _DATETIME.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not an xs:dateTime")
    if match["tz"] is None:
        return None
    tz = UTC if match["tz"] == "Z" else _offset(match["tz"])
    hour = int(match["h"])
    extra = timedelta(0)
    if hour == 24:  # "24:00:00" is the end of the day, which xs:dateTime allows
        if match["m"] != "00" or match["s"] != "00" or (match["f"] and int(match["f"][1:])):
            raise ValueError(f"{text!r} is not an xs:dateTime")
        hour, extra = 0, timedelta(days=1)
    micros = int((match["f"] or ".0")[1:7].ljust(6, "0"))
    try:
        local = datetime.fromisoformat(match["date"]).replace(
            hour=hour, minute=int(match["m"]), second=int(match["s"]), microsecond=micros, tzinfo=tz)
        return (local + extra).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r} is not an xs:dateTime") from None


def _offset(text: str) -> timezone:
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 14 or minutes > 59:
        raise ValueError(f"{text!r} is not a time zone offset")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def format_datetime(at: datetime, tz: timezone | None = None) -> str:
    """An aware instant as an `xs:dateTime` with its offset (in `tz`, UTC by default), to the second."""
    if at.tzinfo is None:
        raise ValueError("DATEX II times carry their offset")
    local = at.astimezone(tz or UTC).replace(microsecond=0)
    return local.isoformat().replace("+00:00", "Z") if local.utcoffset() == timedelta(0) else local.isoformat()


def http_date(at: datetime) -> str:
    """An instant as an HTTP date (`Last-Modified`, `If-Modified-Since`): whole seconds, GMT."""
    return _format_http_date(at.astimezone(UTC).replace(microsecond=0), usegmt=True)


def parse_http_date(text: str | None) -> datetime | None:
    """An HTTP date as an aware instant; None when absent or unreadable (RFC 9110: ignore it then)."""
    if not text:
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
