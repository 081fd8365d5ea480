"""Running one GraphQL operation: parse and validate once per distinct document, then execute.

Parsing and validation are most of the cost of a small query, and clients send the same
few documents over and over, so both are cached by document text (the effect of strawberry's
ParserCache and ValidationCache, without an extension runner on the hot path). Between the two,
the document's expanded shape is bounded (gateway/document_shape.py), so neither validation nor
any later walk can be made to expand fragments without end. Execution is graphql-core's, on
strawberry's schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import strawberry
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
)
from graphql.execution import execute
from graphql.validation import NoSchemaIntrospectionCustomRule

from gateway.config import LimitsConfig
from gateway.cost import Analysis, ComplexityLimits, CostModel, actual_cost, analyze
from gateway.document_shape import ShapeLimits, measure
from gateway.errors import ErrorCode, RequestError
from gateway.plain_fields import Plans, collected_alike, is_awaitable, plain_fields_context
from gateway.text_cache import TextCache

DOCUMENT_CACHE_SIZE = 1024
MAX_TOKENS = 5000  # a parser guard against huge documents, before any finer limit is looked at


@dataclass
class _Parsed:
    """What the executor keeps per document text: the document (or why it cannot run) and, once
    asked, its validation errors."""

    document: DocumentNode | RequestError
    errors: tuple[GraphQLError, ...] | None = None
    #: how its plain fields are read, kept for every execution (gateway/plain_fields.py); None when
    #: what it selects depends on variables
    plans: Plans | None = None


@dataclass(frozen=True)
class Prepared:
    document: DocumentNode
    operation: OperationDefinitionNode
    query: str = ""
    operation_name: str | None = None
    plans: Plans | None = None


class Executor:
    def __init__(self, schema: strawberry.Schema, *, introspection: bool = True,
                 limits: LimitsConfig | None = None) -> None:
        self.schema = schema
        self.graphql_schema = schema._schema
        self.cost_model = CostModel.of(schema)
        self.limits = limits or LimitsConfig()
        self._shape_limits = ShapeLimits(max_selections=self.limits.max_selections, max_depth=self.limits.max_depth,
                                         max_introspection_depth=self.limits.max_introspection_depth)
        self._executor_class = plain_fields_context(schema)
        rules = list(specified_rules)
        if not introspection:
            rules.append(NoSchemaIntrospectionCustomRule)
        self._rules = tuple(rules)
        # Caches are per executor, so a schema or rule change never sees stale entries; bounded by
        # size as well as count (gateway/text_cache.py), so large distinct documents cannot fill them.
        self._documents: TextCache[_Parsed] = TextCache(DOCUMENT_CACHE_SIZE)
        self._analyses: TextCache[Analysis | RequestError] = TextCache(DOCUMENT_CACHE_SIZE)

    def _parsed(self, query: str) -> _Parsed:
        parsed = self._documents.get(query)
        if parsed is None:
            document = self._parse_uncached(query)
            plans: Plans | None = {} if isinstance(document, DocumentNode) and collected_alike(document) else None
            parsed = _Parsed(document, plans=plans)
            self._documents.put(query, parsed)
        return parsed

    def _parse_uncached(self, query: str) -> DocumentNode | RequestError:
        """The document, or why it cannot run: it does not parse, or its expanded shape is over a bound."""
        try:
            document = parse(query, max_tokens=MAX_TOKENS)
        except GraphQLError as error:
            if "Parsing aborted" in error.message:  # graphql-core's guards (tokens, nesting), not a syntax error
                return RequestError(ErrorCode.QUERY_TOO_COMPLEX, _aborted(error.message), errors=(error,))
            return RequestError(ErrorCode.GRAPHQL_PARSE_FAILED, error.message, errors=(error,))
        _unlink_tokens(document)
        try:
            measure(document, self._shape_limits)
        except RequestError as refused:
            return refused
        return document

    def document(self, query: str) -> DocumentNode:
        """The parsed document, its shape bounded; a `RequestError` when it does not parse or is too big."""
        return _runnable(self._parsed(query))

    def validate(self, query: str, document: DocumentNode) -> None:
        """GRAPHQL_VALIDATION_FAILED unless `document` (the text `query`, through `document()`) is valid."""
        kept = self._documents.get(query)
        errors = kept.errors if kept is not None else None
        if errors is None:
            errors = tuple(validate(self.graphql_schema, document, self._rules))
            if kept is not None:
                kept.errors = errors
        if errors:
            raise RequestError(ErrorCode.GRAPHQL_VALIDATION_FAILED, errors[0].message, errors=errors)

    def prepare(self, query: str, operation_name: str | None, *, allow_mutations: bool = True) -> Prepared:
        """Parse, pick the operation, validate; a `RequestError` for anything that cannot run."""
        parsed = self._parsed(query)
        document = _runnable(parsed)
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            message = (
                f"No operation named {operation_name!r} in the document."
                if operation_name else "The document has several operations: say which one with `operationName`."
            )
            if not any(isinstance(d, OperationDefinitionNode) for d in document.definitions):
                message = "The document contains no operation."
            raise RequestError(ErrorCode.BAD_REQUEST, message)
        if operation.operation is OperationType.SUBSCRIPTION:
            raise RequestError(
                ErrorCode.BAD_REQUEST,
                "Subscriptions are served over WebSocket (graphql-transport-ws or graphql-ws) or SSE, not over plain HTTP.",
            )
        if operation.operation is OperationType.MUTATION and not allow_mutations:
            raise RequestError(ErrorCode.BAD_REQUEST, "Mutations must be sent with POST.", status=405)
        self.validate(query, document)
        return Prepared(document, operation, query, operation_name, parsed.plans)

    def analyze(self, prepared: Prepared, variables: dict[str, Any] | None) -> Analysis:
        """Cost and complexity before execution; QUERY_TOO_COMPLEX when over a limit.

        Remembered per document, operation and variables: hot queries repeat exactly."""
        limits = self.limits
        key = "\0".join((prepared.query, prepared.operation_name or "",
                         orjson.dumps(variables, option=orjson.OPT_SORT_KEYS).decode()))
        known = self._analyses.get(key)
        if known is None:
            bounds = ComplexityLimits(max_depth=limits.max_depth, max_aliases=limits.max_aliases,
                                      max_root_fields=limits.max_root_fields, max_selections=limits.max_selections)
            try:
                known = analyze(self.cost_model, self.graphql_schema, prepared.document, prepared.operation,
                                variables, bounds)
            except RequestError as refused:
                known = refused
            self._analyses.put(key, known)
        if isinstance(known, RequestError):
            raise known
        return known

    def actual_cost(self, prepared: Prepared, variables: dict[str, Any] | None, data: dict[str, Any] | None) -> int:
        """The same cost rule over what the answer actually holds (settles the up-front charge)."""
        return actual_cost(self.cost_model, self.graphql_schema, prepared.document, prepared.operation, variables, data)

    async def execute(
        self, prepared: Prepared, context: Any, variables: dict[str, Any] | None, operation_name: str | None
    ) -> ExecutionResult:
        result = execute(
            self.graphql_schema,
            prepared.document,
            context_value=context,
            variable_values=variables,
            operation_name=operation_name,
            executor_class=self._executor_class,
            is_awaitable=is_awaitable,
            plans=prepared.plans,
        )
        if not isinstance(result, ExecutionResult):
            result = await result
        return result


def _runnable(parsed: _Parsed) -> DocumentNode:
    if isinstance(parsed.document, RequestError):
        raise parsed.document
    return parsed.document


def _aborted(message: str) -> str:
    if "tokens" in message:
        return f"The document has more than {MAX_TOKENS} tokens."
    return "The document is nested too deeply."


def _unlink_tokens(document: DocumentNode) -> None:
    """Drop the tokens' links back (only the lexer needs them): a doubly linked chain is a cycle,
    which only the garbage collector frees, after it has had to walk it; a document of thousands of
    tokens that nobody keeps should go as soon as it is dropped."""
    token = document.loc.start_token if document.loc else None
    while token is not None:
        token.prev = None
        token = token.next
