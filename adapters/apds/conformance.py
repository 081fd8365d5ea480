"""Does a message conform to APDS? Checked with a maintained OpenAPI validator (openapi-core) against
the patched modular document (patches.py), never by a hand-written shape check.

For tests, and for an operator checking a real APDS platform: give a request or a response as it
went over the wire (method, path below the APDS root, query, headers, body, status) and get the
findings, each a place in the message and what is wrong there; none means it conforms.

    check_request("GET", "/places", query={"offset": "0"})
    check_response("GET", "/places", 200, body=raw_bytes)
    check_delivery(raw_bytes)   # a webhook delivery (the /webhooks subscription's callback: EventData)
    check_exchange(base_url, request, response)   # one call as it went (parkgate probe)

Paths are those of the document (`/places`, `/rights/assigned/{id}` filled in), without the
root a platform hangs them under (the sandbox's is /apds/v1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from jsonschema.exceptions import ValidationError, best_match
from jsonschema_path import SchemaPath
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.validation.schemas import oas30_write_schema_validators_factory
from werkzeug.datastructures import Headers, ImmutableMultiDict

from adapters.apds.patches import ROOT_DOCUMENT, load_documents
from adapters.conformance import Finding, path_below

#: where the patched documents appear to live, for their relative references to resolve
_BASE = "file:///apds-spec/"
#: the schema of what a subscriber receives (the `placeEvent` callback of POST /webhooks)
_CALLBACK = ("paths", "/webhooks", "post", "callbacks", "placeEvent")


def _retrieve(uri: str) -> Any:
    path = urlsplit(uri).path
    prefix = urlsplit(_BASE).path
    if not path.startswith(prefix):
        raise LookupError(f"{uri} is outside the APDS document")
    return load_documents()[path[len(prefix):]]


@cache
def document() -> SchemaPath:
    """The patched APDS document, its references resolved among its own files."""
    documents = load_documents()
    return SchemaPath.from_dict(documents[ROOT_DOCUMENT], base_uri=_BASE + ROOT_DOCUMENT, handlers={"file": _retrieve})


@cache
def _openapi() -> OpenAPI:
    # The document is checked once, by a test (tests/adapters/apds/test_conformance.py); not on every load.
    return OpenAPI(document(), config=Config(spec_validator_cls=None))


QueryLike = Mapping[str, str] | Sequence[tuple[str, str]] | None


@dataclass
class _Request:
    method: str
    path: str
    body: bytes | None
    content_type: str
    parameters: RequestParameters
    host_url: str = "https://apds.invalid"


@dataclass
class _Response:
    status_code: int
    data: bytes | None
    content_type: str
    headers: Headers = field(default_factory=Headers)


def _request(method: str, path: str, query: QueryLike, headers: Mapping[str, str] | None, body: bytes | None,
             content_type: str) -> _Request:
    pairs = list(query.items()) if isinstance(query, Mapping) else list(query or ())
    parameters = RequestParameters(query=ImmutableMultiDict(pairs), header=Headers(dict(headers or {})),
                                   cookie=ImmutableMultiDict(), path={})
    return _Request(method.lower(), path, body, content_type if body else "", parameters)


def check_request(method: str, path: str, *, query: QueryLike = None, headers: Mapping[str, str] | None = None,
                  body: bytes | None = None, content_type: str = "application/json") -> list[Finding]:
    """What is wrong with a request to an APDS platform (path, method, parameters, body)."""
    request = _request(method, path, query, headers, body, content_type)
    return _findings("request", _openapi().iter_request_errors(request))


def check_response(method: str, path: str, status: int, *, body: bytes | None, query: QueryLike = None,
                   content_type: str = "application/json") -> list[Finding]:
    """What is wrong with an APDS platform's answer to `method path` (status, body)."""
    request = _request(method, path, query, None, None, content_type)
    response = _Response(status, body, content_type if body else "")
    return _findings("response", _openapi().iter_response_errors(request, response))


def check_exchange(base_url: str, request: httpx.Request, response: httpx.Response) -> list[Finding]:
    """One call to an APDS platform whose paths hang from `base_url`: the request and its answer."""
    path = path_below(base_url, request)
    query = request.url.params.multi_items()
    content_type = response.headers.get("content-type", "application/json").split(";")[0]
    return [*check_request(request.method, path, query=query, headers=dict(request.headers), body=request.content or None),
            *check_response(request.method, path, response.status_code, body=response.content or None, query=query,
                            content_type=content_type)]


def check_delivery(body: bytes) -> list[Finding]:
    """What is wrong with one webhook delivery (the EventData a subscriber is POSTed)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return [Finding("delivery body", f"not JSON: {exc}")]
    schema = _delivery_schema()
    validator = oas30_write_schema_validators_factory.create(document(), schema)
    try:
        validator.validate(value)
    except Exception as exc:  # noqa: BLE001 - openapi-core's validation errors carry schema_errors
        return list(_explain("delivery", exc))
    return []


@cache
def _delivery_schema() -> SchemaPath:
    # The callback's one expression key ('{$request.body#/endpoint}') holds a '/': reached by iteration.
    callback = document()
    for part in _CALLBACK:
        callback = callback / part
    ((_, operation),) = callback.str_items()
    return operation / "post" / "requestBody" / "content" / "application/json" / "schema"


def _findings(side: str, errors: Iterable[Exception]) -> list[Finding]:
    out: list[Finding] = []
    for exc in errors:
        out.extend(_explain(side, exc))
    return out


def _explain(where: str, exc: BaseException) -> Iterable[Finding]:
    """openapi-core's exceptions as findings: each schema error at its place in the body."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        schema_errors = getattr(current, "schema_errors", None)
        if schema_errors:
            for error in schema_errors:
                yield _schema_finding(_label(where, exc), error)
            return
        current = current.__cause__ or current.__context__
    cause = exc.__cause__
    detail = str(exc) or type(exc).__name__
    if cause is not None and str(cause) and str(cause) not in detail:
        detail = f"{detail} ({cause})"
    yield Finding(_label(where, exc), detail)


def _label(where: str, exc: BaseException) -> str:
    name = getattr(exc, "name", None)  # a parameter's name
    kind = type(exc).__name__
    if "Parameter" in kind and isinstance(name, str):
        return f"{where} parameter {name}"
    if "Body" in kind or "Data" in kind or "Schema" in kind:
        return f"{where} body"
    return where


def _schema_finding(where: str, error: ValidationError) -> Finding:
    # A failed oneOf/anyOf says only "not valid under any": its best sub-error says where and why.
    while error.context:
        deeper = best_match(_relevant(error.context))
        if deeper is None:
            break
        error = deeper
    location = "/".join(str(part) for part in error.absolute_path)
    message = error.message if len(error.message) <= 300 else error.message[:297] + "..."
    return Finding(f"{where}: {location}" if location else where, message)


def _relevant(errors: Sequence[ValidationError]) -> Sequence[ValidationError]:
    """The sub-errors of the alternatives that apply: a hierarchy element's alternatives are told
    apart by `type` (patches.py), so an alternative whose `type` does not match says nothing."""
    by_alternative: dict[Any, list[ValidationError]] = {}
    for error in errors:
        by_alternative.setdefault(error.relative_schema_path[0] if error.relative_schema_path else None, []).append(error)
    kept = [error for group in by_alternative.values()
            if not any(e.validator == "enum" and list(e.relative_path)[-1:] == ["type"] for e in group)
            for error in group]
    return kept or errors
