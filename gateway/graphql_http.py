"""GraphQL over HTTP (the GraphQL-over-HTTP spec): POST and GET in, JSON out.

Follow a request forward from `GraphQLEndpoint.__call__`:
  authenticate (a `Principal`: scopes and facilities, decided once per request)
  → read the request (method, media types, body size, JSON) → `GraphQLParams`
  → the executor prepares the document (parse, operation, validation; cached)
  → a fresh `RequestContext` (per-request loaders) → execution
  → errors coded and masked → serialized with orjson.

Status codes: with `Accept: application/graphql-response+json` the spec's codes (4xx for a
request that never executed); with plain `application/json` 200 for every well-formed
GraphQL request, as legacy clients expect. Every error has `extensions.code`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send

from gateway.auth.authenticate import UNRESTRICTED, AuthError, Principal
from gateway.errors import ErrorCode, format_error
from gateway.execution import Executor, RequestError
from gateway.graphiql import graphiql_page
from gateway.runtime import Runtime
from resolvers.context import RequestContext

log = logging.getLogger("parkgate.http")

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


@dataclass(frozen=True)
class GraphQLParams:
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None


class HTTPProblem(Exception):
    """A request we answer before GraphQL sees it (wrong media type, body too large...)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def negotiate(accept: str) -> str | None:
    """The response media type for an Accept header; None when we can serve none of its types."""
    if not accept:
        return JSON
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


def params_from_query_string(request: Request) -> GraphQLParams:
    raw: dict[str, Any] = dict(request.query_params)
    for name in ("variables", "extensions"):
        if name in raw:
            try:
                raw[name] = orjson.loads(raw[name])
            except orjson.JSONDecodeError:
                raise RequestError(ErrorCode.BAD_REQUEST, f"`{name}` is not valid JSON.") from None
    return params_from(raw)


class GraphQLEndpoint:
    def __init__(self, runtime: Runtime, executor: Executor) -> None:
        self.runtime = runtime
        self.executor = executor
        server = runtime.config.server
        self.graphiql = server.graphiql
        self.max_body_bytes = server.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        accept = request.headers.get("accept", "")
        if request.method == "GET" and self.graphiql and "text/html" in accept and "query" not in request.query_params:
            return HTMLResponse(graphiql_page())
        media = negotiate(accept)
        if media is None:
            return problem(406, f"Send Accept: {GRAPHQL_RESPONSE} or {JSON}.", JSON)
        try:
            principal = await self.authenticate(request)
        except AuthError as exc:
            body = {"errors": [{"message": exc.message, "extensions": {"code": ErrorCode.UNAUTHENTICATED.value}}]}
            return respond(body, 401, media, {"www-authenticate": exc.www_authenticate()})
        try:
            params = await self.read_params(request)
            prepared = self.executor.prepare(params.query, params.operation_name, allow_mutations=request.method == "POST")
        except HTTPProblem as exc:
            return problem(exc.status, exc.message, media, exc.headers)
        except RequestError as exc:
            # A malformed request is a 4xx whatever the media type; a well-formed request whose
            # document does not parse or validate is 200 under application/json, where legacy
            # clients read the errors from the body.
            status = exc.status if exc.code is ErrorCode.BAD_REQUEST or media == GRAPHQL_RESPONSE else 200
            headers = {"allow": "POST"} if exc.status == 405 else None
            return respond({"errors": exc.formatted()}, status, media, headers)
        context = RequestContext.for_request(self.runtime, principal)
        result = await self.executor.execute(prepared, context, params.variables, params.operation_name)
        body: dict[str, Any] = {}
        if result.errors and result.data is None and all(error.path is None for error in result.errors):
            # Variables that did not coerce: the operation never ran.
            errors = [{**e.formatted, "extensions": {"code": ErrorCode.BAD_USER_INPUT.value}} for e in result.errors]
            return respond({"errors": errors}, 400 if media == GRAPHQL_RESPONSE else 200, media)
        body["data"] = result.data
        if result.errors:
            body["errors"] = [format_error(error) for error in result.errors]
        return respond(body, 200, media)

    async def authenticate(self, request: Request) -> Principal:
        if not self.runtime.config.auth.enabled:
            return UNRESTRICTED
        headers = request.headers
        return await self.runtime.authenticator.authenticate(headers.get("authorization"), headers.get("x-api-key"))

    async def read_params(self, request: Request) -> GraphQLParams:
        if request.method == "GET":
            return params_from_query_string(request)
        if request.method != "POST":
            raise HTTPProblem(405, "Use POST, or GET for queries.", {"allow": "GET, POST"})
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != JSON:
            raise HTTPProblem(415, "Send the request as Content-Type: application/json.")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise HTTPProblem(413, f"The request body is larger than {self.max_body_bytes} bytes.")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.max_body_bytes:
                raise HTTPProblem(413, f"The request body is larger than {self.max_body_bytes} bytes.")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise RequestError(ErrorCode.BAD_REQUEST, "The request body is not valid JSON.") from None
        if isinstance(payload, list):
            raise RequestError(ErrorCode.BAD_REQUEST, "Batched requests (a JSON array) are not accepted; send one operation per request.")
        return params_from(payload)


def respond(body: dict[str, Any], status: int, media: str, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=f"{media}; charset=utf-8", headers=headers)


def problem(status: int, message: str, media: str, headers: dict[str, str] | None = None) -> Response:
    return respond({"errors": [{"message": message, "extensions": {"code": ErrorCode.BAD_REQUEST.value}}]}, status, media, headers)
