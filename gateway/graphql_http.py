"""GraphQL over HTTP (the GraphQL-over-HTTP spec): POST and GET in, JSON out.

Follow a request forward from `GraphQLEndpoint.__call__` (read from the ASGI scope and answered
on the ASGI messages: gateway/http_exchange.py):
  authenticate (a `Principal`: scopes, facilities, plan; decided once per request)
  → read the request (method, media types, body size, JSON; an array is a batch)
  → per operation (`GraphQLEndpoint.operation`): the card-number screen (gateway/card_screen.py),
    a persisted query looked up or stored, `GraphQLParams`
  → the executor prepares the document (parse, operation, validation; cached)
  → its cost and complexity (`gateway.cost`) (all of this, from JSON on, is a pure function of a
    POST body's bytes: a body that passed it before is taken from `BodyMemo`, gateway/body_memo.py)
  → the response cache: a hit is charged its known cost,
    and answered as kept (gateway/response_cache.py) → the meter admits it or refuses (429, 503)
  → a fresh `RequestContext` (per-request loaders) → execution
  → the meter settles on the actual cost → errors coded and masked, RateLimit headers,
    `extensions.cost` → serialized with orjson.
  → observed (`operation`, around all of the above): counted for Prometheus by client, operation
    name, outcome and first error code, its time and cost; with tracing on and the request sampled,
    a span of its own; the request's log line told the client, the operation and the cost; every
    error given the request's id as `extensions.requestId` (gateway/observability/).

Status codes: with `Accept: application/graphql-response+json` the spec's codes (4xx for a
request that never executed); with plain `application/json` 200 for every well-formed
GraphQL request, as legacy clients expect. Every error has `extensions.code`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
from graphql import OperationType
from starlette.datastructures import QueryParams
from starlette.types import Receive, Scope, Send

from gateway.auth.authenticate import UNRESTRICTED, AuthError, Principal
from gateway.body_memo import BodyMemo, UnderstoodBody
from gateway.card_screen import refuse_card_numbers
from gateway.errors import RETRY_AFTER_S, ErrorCode, RequestError, StoreUnavailable, format_error, redacted, unavailable
from gateway.execution import Executor
from gateway.graphiql import DEFAULT_HEADERS, graphiql_page
from gateway.http_exchange import BodyTooLarge, Incoming, Outgoing, read_body
from gateway.kernel.context import RequestContext
from gateway.metering import Meter, MeterRefusal
from gateway.observability import request_log
from gateway.observability.metrics import ERROR, OK, PARTIAL, REFUSED, UNPREPARED
from gateway.observability.request_log import with_request_id
from gateway.pages.security import PAGE_HEADERS
from gateway.persisted_queries import PersistedQueries
from gateway.response_cache import CachedAnswer, ResponseCache
from gateway.runtime import Runtime

log = logging.getLogger("parkgate.http")

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


class GraphQLParams(NamedTuple):
    """An operation's parameters as sent (a tuple: made on every request, read a few times)."""

    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None


#: an operation's kind as a label ("query", "mutation"): the enum's `.value` is a descriptor call per read
_KINDS = {kind: kind.value for kind in OperationType}


class OperationFacts:
    """What observing an operation needs to know that only its way forward finds out."""

    __slots__ = ("cost", "kind", "label")

    def __init__(self) -> None:
        self.label = UNPREPARED  # its name as a metrics label (gateway/observability/metrics.py: OperationNames)
        self.kind = "operation"  # query, mutation, subscription
        self.cost: int | None = None  # actual cost, once known


#: codes of operations the meter refused (429, over the per-query ceiling)
REFUSAL_CODES = frozenset({ErrorCode.RATE_LIMITED.value, ErrorCode.COST_LIMIT_EXCEEDED.value})
UNAUTHENTICATED_CLIENT = "unauthenticated"


class HTTPProblem(Exception):
    """A request we answer before GraphQL sees it (wrong media type, body too large...)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


#: Accept headers already negotiated (clients send the same few): bounded, cleared when full
_NEGOTIATED: dict[str, str | None] = {}


def negotiate(accept: str) -> str | None:
    """The response media type for an Accept header; None when we can serve none of its types."""
    if not accept:
        return JSON
    if accept in _NEGOTIATED:
        return _NEGOTIATED[accept]
    if len(_NEGOTIATED) >= 256:
        _NEGOTIATED.clear()
    media = _NEGOTIATED[accept] = _negotiate(accept)
    return media


def _negotiate(accept: str) -> str | None:
    offered = []
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        offered.append((quality, media.strip().lower()))
    for quality, media in sorted(offered, key=lambda item: -item[0]):
        if quality <= 0:
            continue
        if media == GRAPHQL_RESPONSE:
            return GRAPHQL_RESPONSE
        if media in (JSON, "application/*", "*/*"):
            return JSON
    return None


def params_from(payload: Any) -> GraphQLParams:
    if not isinstance(payload, dict):
        raise RequestError(ErrorCode.BAD_REQUEST, "The request body must be a JSON object with a `query`.")
    query = payload.get("query")
    variables = payload.get("variables")
    operation_name = payload.get("operationName")
    extensions = payload.get("extensions")
    if not isinstance(query, str) or not query.strip():
        raise RequestError(ErrorCode.BAD_REQUEST, "`query` must be a non-empty string.")
    if variables is not None and not isinstance(variables, dict):
        raise RequestError(ErrorCode.BAD_REQUEST, "`variables` must be a JSON object.")
    if operation_name is not None and not isinstance(operation_name, str):
        raise RequestError(ErrorCode.BAD_REQUEST, "`operationName` must be a string.")
    if extensions is not None and not isinstance(extensions, dict):
        raise RequestError(ErrorCode.BAD_REQUEST, "`extensions` must be a JSON object.")
    return GraphQLParams(query, variables, operation_name, extensions)


def params_from_query_string(query_string: bytes) -> dict[str, Any]:
    raw: dict[str, Any] = dict(QueryParams(query_string))
    for name in ("variables", "extensions"):
        if name in raw:
            try:
                raw[name] = orjson.loads(raw[name])
            except orjson.JSONDecodeError:
                raise RequestError(ErrorCode.BAD_REQUEST, f"`{name}` is not valid JSON.") from None
    return raw


@dataclass
class OperationAnswer:
    """One operation's answer: its body, the HTTP status it calls for, and its headers."""

    body: dict[str, Any]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    #: seconds a browser or CDN may reuse a GET answer (0: never)
    max_age: int = 0
    #: `data` already serialized (a response-cache hit): spliced into the body as is
    data_json: bytes | None = None

    def payload(self) -> bytes:
        if self.data_json is None:
            return orjson.dumps(self.body)
        rest = orjson.dumps(self.body)[1:-1]  # the body's other members, e.g. "extensions"
        return b'{"data":' + self.data_json + (b"," + rest if rest else b"") + b"}"

    def data_bytes(self) -> bytes:
        return self.data_json if self.data_json is not None else orjson.dumps(self.body.get("data"))


class GraphQLEndpoint:
    def __init__(self, runtime: Runtime, executor: Executor, meter: Meter, responses: ResponseCache,
                 persisted: PersistedQueries) -> None:
        self.runtime = runtime
        self.executor = executor
        self.meter = meter
        self.responses = responses
        self.persisted = persisted
        self.metrics = runtime.observability.metrics
        self.tracing = runtime.observability.tracing
        server = runtime.config.server
        self.graphiql = server.graphiql
        #: what GraphiQL's Headers tab starts with (the sandbox puts a demo client's key there)
        self.graphiql_headers = DEFAULT_HEADERS
        self.max_body_bytes = server.max_body_bytes
        self.max_batch = runtime.config.limits.max_batch
        #: POST bodies already understood (gateway/body_memo.py): a hot query's bytes are checked once
        self.bodies = BodyMemo()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = await self.handle(Incoming.of(scope), receive)
        await answer.send(send)

    async def handle(self, request: Incoming, receive: Receive) -> Outgoing:
        accept = request.accept
        if (request.method == "GET" and self.graphiql and "text/html" in accept
                and "query" not in QueryParams(request.query_string)):
            return Outgoing(200, graphiql_page(self.graphiql_headers).encode(), "text/html; charset=utf-8", PAGE_HEADERS)
        media = negotiate(accept)
        if media is None:
            return problem(406, f"Send Accept: {GRAPHQL_RESPONSE} or {JSON}.", JSON)
        try:
            principal = await self.authenticate(request)
        except AuthError as exc:
            self.metrics.operation(UNAUTHENTICATED_CLIENT, UNPREPARED, ERROR, ErrorCode.UNAUTHENTICATED.value, 0.0)
            body = {"errors": [{"message": exc.message, "extensions": {"code": ErrorCode.UNAUTHENTICATED.value}}]}
            return respond(body, 401, media, {"www-authenticate": exc.www_authenticate()})
        except StoreUnavailable:
            log.error("client store unreachable: refusing requests until it answers")
            return respond({"errors": [unavailable()]}, 503, media, {"retry-after": str(RETRY_AFTER_S)})
        sent = None
        try:
            if request.method == "POST":
                sent = await self.read_post_body(request, receive)
                payload: Any = self.bodies.get(sent) or decoded(sent)
            else:
                payload = self.read_query(request)
        except BodyTooLarge:
            return problem(413, f"The request body is larger than {self.max_body_bytes} bytes.", media)
        except HTTPProblem as exc:
            return problem(exc.status, exc.message, media, exc.headers)
        except RequestError as exc:
            return respond({"errors": exc.formatted()}, exc.status, media)
        if isinstance(payload, list):
            return await self.batch(payload, principal, media)
        answer = await self.operation(payload, principal, request.method, media, sent)
        if request.method == "GET":
            return conditional(request, answer, media)
        return send(answer, media, {**answer.headers, "cache-control": "no-store"})

    async def batch(self, payloads: list[Any], principal: Principal, media: str) -> Outgoing:
        """A JSON array of operations: each one checked, metered and answered on its own."""
        if not payloads or len(payloads) > self.max_batch:
            error = RequestError(ErrorCode.BAD_REQUEST, f"A batch holds 1 to {self.max_batch} operations.")
            return respond({"errors": error.formatted()}, 400, media)
        answers = [await self.operation(payload, principal, "POST", media) for payload in payloads]
        headers = next((o.headers for o in reversed(answers) if o.headers), {})
        return Outgoing(200, b"[" + b",".join(o.payload() for o in answers) + b"]", f"{media}; charset=utf-8", headers)

    async def operation(self, payload: Any, principal: Principal, method: str, media: str,
                        sent: bytes | None = None) -> OperationAnswer:
        """One operation, observed: counted, timed, traced when sampled, its errors given the request's id.
        `payload` is the parameters as sent (from the POST body `sent`), or what those bytes were understood as before."""
        started = time.perf_counter()
        facts = OperationFacts()
        record = request_log.current()
        if self.tracing is None or record is None or not record.sampled:
            answer = await self.run_operation(payload, principal, method, media, facts, sent)
        else:
            with self.tracing.child("graphql operation") as span:
                answer = await self.run_operation(payload, principal, method, media, facts, sent)
                if span is not None:
                    span.update_name(f"{facts.kind} {facts.label}")
                    span.set_attributes({"graphql.operation.name": facts.label, "graphql.operation.type": facts.kind,
                                         "parkgate.client": principal.client_id, "parkgate.cost": facts.cost or 0})
        self.observe(principal, answer, facts, time.perf_counter() - started, record)
        return answer

    def observe(self, principal: Principal, answer: OperationAnswer, facts: OperationFacts, seconds: float,
                record: request_log.RequestRecord | None) -> None:
        errors = answer.body.get("errors")
        if errors:
            code = errors[0].get("extensions", {}).get("code", ErrorCode.INTERNAL.value)
            if code in REFUSAL_CODES:
                outcome = REFUSED
            elif answer.body.get("data") is not None or answer.data_json is not None:
                outcome = PARTIAL
            else:
                outcome = ERROR
            if record is not None:
                answer.body["errors"] = with_request_id(errors, record.id)
        else:
            code, outcome = "none", OK
        metrics = self.metrics
        metrics.operation(principal.client_id, facts.label, outcome, code, seconds)
        if facts.cost is not None:
            metrics.cost(principal.client_id, facts.cost)
        if record is not None:
            record.client_id = principal.client_id
            record.operation = facts.label if record.operation is None else f"{record.operation},{facts.label}"
            if facts.cost is not None:
                record.cost = (record.cost or 0) + facts.cost
            if errors and record.code is None:
                record.code = code

    async def run_operation(self, payload: Any, principal: Principal, method: str, media: str,
                            facts: OperationFacts, sent: bytes | None = None) -> OperationAnswer:
        """One operation forward: params → prepare → analyze → meter → (cached answer | execute) → settle."""
        try:
            if isinstance(payload, UnderstoodBody):
                understood = payload
                facts.label, facts.kind = understood.label, understood.kind
            else:
                understood = await self.understand(payload, method, facts)
                if sent is not None and understood.kind == "query" and not _persisted(payload):
                    self.bodies.put(sent, understood)  # all of the above is a pure function of these bytes
            params, prepared, analysis = understood.params, understood.prepared, understood.analysis
            max_age = analysis.max_age
            cache_key = self.responses.key(params.query, params.operation_name, params.variables, principal) if max_age else None
            cached = await self.responses.get(cache_key, principal) if cache_key else None
            charge = await self.meter.admit(principal, analysis, cached.actual_cost if cached else None)
        except RequestError as exc:
            # Refused before it ran, yet counted as one request (no cost): refusing takes work too.
            try:
                headers = await self.meter.count_refused(principal)
            except MeterRefusal as refusal:
                return refused(refusal, media)
            # A malformed request is a 4xx whatever the media type; a well-formed request whose
            # document does not parse, validate or fit the limits is 200 under application/json,
            # where legacy clients read the errors from the body.
            status = exc.status if exc.code is ErrorCode.BAD_REQUEST or media == GRAPHQL_RESPONSE else 200
            if exc.status == 405:
                headers = {**headers, "allow": "POST"}
            return OperationAnswer({"errors": exc.formatted()}, status, headers)
        except MeterRefusal as refusal:
            return refused(refusal, media)
        if cached is not None:
            facts.cost = cached.actual_cost
            settled = await self.meter.settle(charge, cached.actual_cost)
            without_data = {"extensions": {"cost": settled.extensions}} if settled.extensions else {}
            return OperationAnswer(without_data, 200, settled.headers, max_age, data_json=cached.data_json)
        context = RequestContext.for_request(self.runtime, principal, charge)
        result = await self.executor.execute(prepared, context, params.variables, params.operation_name)
        if result.errors and result.data is None and all(error.path is None for error in result.errors):
            # Variables that did not coerce: the operation never ran (and costs nothing).
            settled = await self.meter.settle(charge, 0)
            uncoerced = [redacted({**e.formatted, "extensions": {"code": ErrorCode.BAD_USER_INPUT.value}})
                         for e in result.errors]
            return OperationAnswer({"errors": uncoerced}, 400 if media == GRAPHQL_RESPONSE else 200, settled.headers)
        actual = facts.cost = self.executor.actual_cost(prepared, params.variables, result.data)
        settled = await self.meter.settle(charge, actual)
        body: dict[str, Any] = {"data": result.data}
        errors = [*(result.errors or ()), *context.warnings]
        if errors:
            body["errors"] = [format_error(error) for error in errors]
        if settled.extensions:
            body["extensions"] = {"cost": settled.extensions}
        if errors:
            if only_store_unavailable(body):
                # nothing was answered, only for want of the store: the same 503 as a refusal at the edge
                return OperationAnswer({"errors": body["errors"]}, 503,
                                       {**settled.headers, "retry-after": str(RETRY_AFTER_S)})
            return OperationAnswer(body, 200, settled.headers)  # partial answers are neither kept nor reused
        if cache_key is not None and result.data is not None and not context.used_stale:
            data_json = orjson.dumps(result.data)
            await self.responses.put(cache_key, principal, CachedAnswer(data_json, actual), max_age)
            del body["data"]
            return OperationAnswer(body, 200, settled.headers, max_age, data_json=data_json)
        return OperationAnswer(body, 200, settled.headers, max_age)

    async def understand(self, payload: Any, method: str, facts: OperationFacts) -> UnderstoodBody:
        """Parameters as sent → screened, prepared and analyzed (a RequestError when it cannot run)."""
        if isinstance(payload, dict):
            refuse_card_numbers(payload)  # before a document is stored, parsed or run
            payload = await self.persisted.resolve(payload)
        params = params_from(payload)
        prepared = self.executor.prepare(params.query, params.operation_name, allow_mutations=method == "POST")
        named = prepared.operation.name
        facts.label = self.metrics.operations.label(named.value if named is not None else None)
        facts.kind = _KINDS[prepared.operation.operation]
        analysis = self.executor.analyze(prepared, params.variables)
        return UnderstoodBody(params, prepared, analysis, facts.label, facts.kind)

    async def authenticate(self, request: Incoming) -> Principal:
        if not self.runtime.config.auth.enabled:
            return UNRESTRICTED
        return await self.runtime.authenticator.authenticate(request.authorization, request.api_key)

    def read_query(self, request: Incoming) -> Any:
        """A GET's GraphQL parameters, from its query string (any other method but POST is refused)."""
        if request.method != "GET":
            raise HTTPProblem(405, "Use POST, or GET for queries.", {"allow": "GET, POST"})
        return params_from_query_string(request.query_string)

    async def read_post_body(self, request: Incoming, receive: Receive) -> bytes:
        """A POST's body: JSON (a GraphQL request, or an array of them for a batch) within the size limit."""
        content_type = request.content_type.split(";")[0].strip().lower()
        if content_type != JSON:
            raise HTTPProblem(415, "Send the request as Content-Type: application/json.")
        declared = request.content_length
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise BodyTooLarge
        return await read_body(receive, self.max_body_bytes)


def decoded(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RequestError(ErrorCode.BAD_REQUEST, "The request body is not valid JSON.") from None


def _persisted(payload: Any) -> bool:
    """Whether the request uses a persisted query (resolving it reads or writes the store: not pure)."""
    extensions = payload.get("extensions") if isinstance(payload, dict) else None
    return isinstance(extensions, dict) and "persistedQuery" in extensions


def refused(refusal: MeterRefusal, media: str) -> OperationAnswer:
    """The meter's refusal as an answer. Over the per-query ceiling is a document that will never
    run: 200 under application/json, like any such document; the others keep their status."""
    status = refusal.status
    if refusal.code is ErrorCode.COST_LIMIT_EXCEEDED and media != GRAPHQL_RESPONSE:
        status = 200
    return OperationAnswer(refusal.body(), status, refusal.headers)


def conditional(request: Incoming, answer: OperationAnswer, media: str) -> Outgoing:
    """A GET answer with HTTP caching: private (it depends on who asks), an ETag over the data,
    and 304 when the client already has it."""
    if answer.status != 200 or not answer.max_age:
        return send(answer, media, {**answer.headers, "cache-control": "no-store"})
    etag = 'W/"' + hashlib.sha256(answer.data_bytes()).hexdigest()[:32] + '"'
    headers = {**answer.headers, "cache-control": f"private, max-age={answer.max_age}", "etag": etag,
               "vary": "Authorization, X-API-Key, Accept"}
    if etag in [tag.strip() for tag in request.if_none_match.split(",")]:
        return Outgoing(304, b"", None, headers)
    return send(answer, media, headers)


def send(answer: OperationAnswer, media: str, headers: dict[str, str]) -> Outgoing:
    return Outgoing(answer.status, answer.payload(), f"{media}; charset=utf-8", headers)


def respond(body: dict[str, Any], status: int, media: str, headers: dict[str, str] | None = None) -> Outgoing:
    """An answer made at the edge (before any operation): its errors carry the request's id too."""
    errors = body.get("errors")
    request_id = request_log.current_id()
    if errors and request_id is not None:
        body = {**body, "errors": with_request_id(errors, request_id)}
    return Outgoing(status, orjson.dumps(body), f"{media}; charset=utf-8", headers or {})


def only_store_unavailable(body: dict[str, Any]) -> bool:
    """No root field has a value and every error is GATEWAY_UNAVAILABLE: the operation could not be
    carried out at all because the gateway's own store is unreachable (an admin operation, a write
    whose idempotency key cannot be kept). Anything answered makes it a partial answer instead."""
    answered = any(value is not None for value in (body.get("data") or {}).values())
    return not answered and all(e["extensions"]["code"] == ErrorCode.GATEWAY_UNAVAILABLE.value for e in body["errors"])


def problem(status: int, message: str, media: str, headers: dict[str, str] | None = None) -> Outgoing:
    return respond({"errors": [{"message": message, "extensions": {"code": ErrorCode.BAD_REQUEST.value}}]}, status, media, headers)
