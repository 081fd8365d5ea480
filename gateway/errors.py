"""The one catalog of error codes a client can see, and the errors that carry them.

Every GraphQL error parkgate returns has `extensions.code` from `ErrorCode`; a client never
has to read a message to know what happened. Add a code here (and to docs/errors.md),
never ad hoc in a resolver.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from graphql import GraphQLError
from redis.exceptions import (
    ClusterDownError,
    ReadOnlyError,
    RedisClusterUnreachableError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from adapters.errors import UpstreamError
from gateway.card_numbers import redact

log = logging.getLogger("parkgate.errors")


class ErrorCode(StrEnum):
    # Requests that never reach execution (the codes Apollo clients already know).
    BAD_REQUEST = "BAD_REQUEST"  # malformed HTTP or JSON, missing query, wrong method
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    # Who may do what.
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    # How much.
    RATE_LIMITED = "RATE_LIMITED"
    COST_LIMIT_EXCEEDED = "COST_LIMIT_EXCEEDED"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    # What was asked.
    BAD_USER_INPUT = "BAD_USER_INPUT"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"  # the request conflicts with the current state; `extensions.reason` says how
    PAYMENT_DECLINED = "PAYMENT_DECLINED"  # the payment processor declined the token; nothing was charged
    # The vendor systems behind the gateway.
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT"
    UPSTREAM_ERROR = "UPSTREAM_ERROR"
    # The gateway's own state store (Redis) cannot be reached and the configuration says to
    # refuse rather than guess (authentication always; quotas when on_redis_error is closed).
    GATEWAY_UNAVAILABLE = "GATEWAY_UNAVAILABLE"
    # Anything else: a bug of ours. Masked; the details go to the log only.
    INTERNAL = "INTERNAL"


class GatewayError(GraphQLError):
    """A GraphQL error with a catalog code; raise it from resolvers and the edge alike."""

    def __init__(self, code: ErrorCode, message: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": code.value, **extensions})
        self.code = code


class StoreUnavailable(Exception):
    """The gateway's own store (Redis) cannot be reached, so what was asked cannot be decided or
    kept now (it is never guessed). On every path the answer is the same: `GATEWAY_UNAVAILABLE`,
    HTTP 503 with `Retry-After` (see `STORE_ERRORS`)."""


#: what "the gateway's own store cannot be reached" looks like: our own `StoreUnavailable`, or
#: redis-py's connection and timeout errors coming up from any Redis-backed part (a Sentinel that
#: knows no master says so with a connection error too), and what a failover looks like while it
#: happens: a write that reached a master just turned replica (READONLY), a cluster whose slot has
#: no master yet (CLUSTERDOWN, TRYAGAIN, a slot no node covers, no node answering). Every edge
#: (GraphQL errors, the app's exception handler, the OAuth endpoint, the CLI) answers these alike.
STORE_ERRORS: tuple[type[Exception], ...] = (
    StoreUnavailable, RedisConnectionError, RedisTimeoutError, ReadOnlyError, ClusterDownError, TryAgainError,
    SlotNotCoveredError, RedisClusterUnreachableError,
)
#: seconds a client is asked to wait (`Retry-After`) while the store cannot be reached
RETRY_AFTER_S = 5
STORE_UNAVAILABLE = "The gateway cannot reach its store; try again shortly."


def unavailable(message: str = STORE_UNAVAILABLE) -> dict[str, Any]:
    """The wire form of `GATEWAY_UNAVAILABLE`, for bodies built outside GraphQL execution."""
    return {"message": message, "extensions": {"code": ErrorCode.GATEWAY_UNAVAILABLE.value}}


def bad_input(message: str, **extensions: Any) -> GatewayError:
    return GatewayError(ErrorCode.BAD_USER_INPUT, message, **extensions)


def from_upstream(exc: UpstreamError) -> GatewayError:
    """The client-facing form of a vendor failure: which system, what kind, no secrets."""
    return GatewayError(ErrorCode(exc.code), f"Source {exc.system_id!r} failed: {exc.detail}", system=exc.system_id)


@dataclass
class RequestError(Exception):
    """The request never reached execution; `status` is the HTTP status for graphql-response+json."""

    code: ErrorCode
    message: str
    status: int = 400
    locations: tuple[dict[str, int], ...] = ()
    errors: tuple[GraphQLError, ...] = ()
    extensions: dict[str, Any] = field(default_factory=dict)  # beside `code`, e.g. `reason`

    def formatted(self) -> list[dict[str, Any]]:
        extensions = {"code": self.code.value, **self.extensions}
        if self.errors:
            return [redacted({**error.formatted, "extensions": extensions}) for error in self.errors]
        return [redacted({"message": self.message, "extensions": extensions})]


def redacted(formatted: dict[str, Any]) -> dict[str, Any]:
    """An error whose message quotes a client's input (graphql-core's coercion and validation
    messages do) never carries a card number back, even to the client that sent it."""
    message = formatted.get("message")
    if isinstance(message, str) and any(ch.isdigit() for ch in message):
        formatted["message"] = redact(message)
    return formatted


INTERNAL_MESSAGE = "Internal server error."


def format_error(error: GraphQLError) -> dict[str, Any]:
    """The wire form of an error, with a code always and internals never."""
    original = error.original_error
    formatted: dict[str, Any] = {**error.formatted}
    if isinstance(original, GraphQLError) and (original.extensions or {}).get("code"):
        formatted["extensions"] = {**(original.extensions or {}), **(error.extensions or {})}
        return redacted(formatted)
    if isinstance(original, UpstreamError):
        return {**formatted, "message": from_upstream(original).message,
                "extensions": from_upstream(original).extensions}
    if isinstance(original, STORE_ERRORS):
        # not a bug of ours: one line, no traceback; the client is told to come back
        log.warning("%s: the store cannot be reached (%s: %s)", error.path, type(original).__name__, original)
        return {**formatted, **unavailable()}
    if original is not None or not (error.extensions or {}).get("code"):
        # An exception we did not expect, or graphql-core noticing a broken promise of ours
        # (null for a non-null field): log everything, tell the client nothing about it.
        log.error("internal error at %s: %s", error.path, redact(error.message), exc_info=original)
        formatted["message"] = INTERNAL_MESSAGE
        formatted["extensions"] = {"code": ErrorCode.INTERNAL.value}
        return formatted
    return redacted(formatted)
