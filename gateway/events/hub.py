"""Shared subscription execution: identical subscriptions run once and fan out the same bytes.

Key: (document, operation name, variables JSON, permission signature = scopes + facilities).
The first subscriber of a key starts the source (the field's async generator, with a context
made from its principal); each event is executed once, with a fresh `RequestContext` (fresh
loaders), serialized once (orjson), and the resulting text handed to every subscriber. The
last subscriber leaving stops the source. Subscribers of one key share everything a resolver
may look at (scopes, facilities), so sharing cannot leak.

Open subscriptions are counted per client against `effective_plan(...).max_subscriptions`, on
every replica at once when the store is Redis (gateway/events/subscription_slots.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import strawberry
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
)
from graphql.execution import create_source_event_stream, execute_subscription_event

from gateway.auth.authenticate import Principal, permission_signature
from gateway.card_screen import refuse_card_numbers
from gateway.errors import ErrorCode, RequestError, format_error
from gateway.events.drops import Drops
from gateway.events.subscription_slots import SubscriptionSlots
from gateway.execution import Executor, Prepared
from gateway.kernel.context import RequestContext
from gateway.kernel.permissions import scopes_of
from gateway.quotas import effective_plan
from gateway.runtime import Runtime

log = logging.getLogger("parkgate.subscriptions")
#: payloads dropped from subscribers' full queues, in this process (warned of at most every few seconds)
DROPPED_PAYLOADS = Drops(log, "payloads")

MEMBER_QUEUE = 1000  # payloads buffered per subscriber before its oldest are dropped
END = None  # queued after the last payload: the source finished


@dataclass(frozen=True)
class Operation:
    query: str
    operation_name: str | None
    variables: dict[str, Any] | None
    document: DocumentNode
    operation: OperationDefinitionNode


class Member:
    """One subscriber: a queue of serialized payloads (str), then END; or an `error` list."""

    def __init__(self, group: Group) -> None:
        self.group = group
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(MEMBER_QUEUE)
        self.errors: list[dict[str, Any]] | None = None

    def deliver(self, payload: str | None) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            DROPPED_PAYLOADS.note()
        self.queue.put_nowait(payload)

    def end(self, errors: list[dict[str, Any]]) -> None:
        """End this subscriber now with `errors`: what it has not read yet is never sent."""
        self.errors = errors
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(END)

    async def __aiter__(self) -> AsyncIterator[str]:
        while (payload := await self.queue.get()) is not END:
            yield payload


@dataclass(eq=False)
class Group:
    key: tuple[Any, ...]
    op: Operation
    principal: Principal
    members: set[Member] = field(default_factory=set)
    task: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class SubscriptionHub:
    def __init__(self, runtime: Runtime, schema: strawberry.Schema) -> None:
        self.runtime = runtime
        self.schema = schema
        self.graphql_schema = schema._schema
        self.executor_class = schema.execution_context_class
        self.groups: dict[tuple[Any, ...], Group] = {}
        self.slots = SubscriptionSlots.from_config(runtime.config)
        self.executions = 0  # events executed (one per event per group, not per subscriber)
        #: subscriptions open in this process, for Prometheus (workers' figures add up)
        self.open_gauge = runtime.observability.metrics.subscriptions_open.child()
        # Documents are parsed, bounded, validated and checked against the limits as over HTTP.
        self.documents = Executor(schema, introspection=runtime.config.server.introspection,
                                  limits=runtime.config.limits)

    # --- preparing ------------------------------------------------------------------------
    def prepare(self, payload: Any) -> Operation:
        """A subscription operation from `{query, variables, operationName}`; RequestError otherwise."""
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            raise RequestError(ErrorCode.BAD_REQUEST, "Send `query` (a string), with optional `variables` and `operationName`.")
        query, variables, name = payload["query"], payload.get("variables"), payload.get("operationName")
        if variables is not None and not isinstance(variables, dict):
            raise RequestError(ErrorCode.BAD_REQUEST, "`variables` must be a JSON object.")
        if name is not None and not isinstance(name, str):
            raise RequestError(ErrorCode.BAD_REQUEST, "`operationName` must be a string.")
        refuse_card_numbers(payload)
        if self.graphql_schema.subscription_type is None:
            raise RequestError(ErrorCode.BAD_REQUEST, "This gateway's schema has no subscriptions.")
        document = self.documents.document(query)
        self.documents.validate(query, document)
        operation = get_operation_ast(document, name)
        if operation is None:
            raise RequestError(ErrorCode.BAD_REQUEST, "Say which operation to run with `operationName`.")
        if operation.operation is not OperationType.SUBSCRIPTION:
            raise RequestError(ErrorCode.BAD_REQUEST, "Only subscriptions are served here; send queries and mutations over HTTP.")
        self.documents.analyze(Prepared(document, operation, query, name), variables)  # depth, aliases, root fields
        return Operation(query, name, variables, document, operation)

    def check_scopes(self, op: Operation, principal: Principal) -> None:
        """FORBIDDEN before anything starts when a root field needs a scope the client lacks."""
        subscription_type = self.graphql_schema.subscription_type
        assert subscription_type is not None  # prepare() admitted a subscription operation
        fields = subscription_type.fields
        for selection in root_fields(op.document, op.operation.selection_set):
            graphql_field = fields.get(selection.name.value)
            definition = graphql_field.extensions.get("strawberry-definition") if graphql_field else None
            missing = scopes_of(definition) - principal.scopes
            if missing:
                raise RequestError(ErrorCode.FORBIDDEN, f"Subscription.{selection.name.value} needs scope "
                                   f"{', '.join(sorted(missing))}, which this client does not have.")


    # --- joining and leaving ----------------------------------------------------------------
    def limit(self, principal: Principal) -> int:
        plans = self.runtime.plans
        return effective_plan(plans.get(principal.plan) or plans["standard"], principal.quota_overrides).max_subscriptions

    async def join(self, op: Operation, principal: Principal) -> Member:
        """Subscribe; RequestError FORBIDDEN / RATE_LIMITED when refused. `leave()` when done."""
        self.check_scopes(op, principal)
        limit = self.limit(principal)
        if not await self.slots.take(principal.client_id, limit):
            raise RequestError(ErrorCode.RATE_LIMITED, f"This client may hold {limit} subscriptions open at once; "
                               "complete one first.", status=429)
        key = (op.query, op.operation_name, orjson.dumps(op.variables, option=orjson.OPT_SORT_KEYS),
               permission_signature(principal))
        group = self.groups.get(key)
        if group is None:
            # The group's principal is the first subscriber's, without its identity: what differs
            # between members (client id, name, plan) must not reach a resolver.
            shared = replace(principal, client_id="subscription", client_name="subscription", plan="standard", quota_overrides={})
            group = self.groups[key] = Group(key, op, shared)
            group.task = asyncio.create_task(self._run(group))
        member = Member(group)
        group.members.add(member)
        self.open_gauge.inc()
        try:
            await group.ready.wait()
        except BaseException:  # cancelled while the group starts (the client went away): give the slot back
            self.leave(member, principal)
            raise
        return member

    def leave(self, member: Member, principal: Principal) -> None:
        group = member.group
        if member not in group.members:
            return
        group.members.discard(member)
        self.open_gauge.dec()
        self.slots.give_back(principal.client_id)
        if not group.members and self.groups.get(group.key) is group:
            del self.groups[group.key]
            if group.task is not None:
                group.task.cancel()

    @property
    def open(self) -> Counter[str]:
        """Client id -> subscriptions open in this process."""
        return self.slots.local

    async def aclose(self) -> None:
        await self.slots.aclose()

    @property
    def subscribers(self) -> int:
        return sum(len(group.members) for group in self.groups.values())

    # --- running one shared execution -------------------------------------------------------
    def _executor(self, group: Group, root: Any = None) -> Any:
        context = RequestContext.for_request(self.runtime, group.principal)
        built = self.executor_class.build(self.graphql_schema, group.op.document, root_value=root, context_value=context,
                                          raw_variable_values=group.op.variables, operation_name=group.op.operation_name)
        if isinstance(built, list):
            raise RequestError(ErrorCode.BAD_USER_INPUT, built[0].message, errors=tuple(built))
        return built

    async def _run(self, group: Group) -> None:
        source: Any = None
        try:
            try:
                stream = create_source_event_stream(self._executor(group))
                if inspect.isawaitable(stream):
                    stream = await stream
            except RequestError as exc:
                self._fail(group, exc.formatted())
                return
            if isinstance(stream, ExecutionResult):
                self._fail(group, [format_error(e) for e in stream.errors or ()])
                return
            source = stream.__aiter__()
            pending = asyncio.ensure_future(source.__anext__())
            await asyncio.sleep(0)  # the generator runs up to its first wait: it is on the bus now
            group.ready.set()
            while True:
                try:
                    event = await pending
                except StopAsyncIteration:
                    break
                pending = asyncio.ensure_future(source.__anext__())
                payload = await self._execute(group, event)
                for member in list(group.members):
                    member.deliver(payload)
            for member in list(group.members):
                member.deliver(END)
        except asyncio.CancelledError:
            raise
        except Exception:  # a broken source ends its subscribers, not the process
            log.exception("subscription source failed")
            self._fail(group, [{"message": "The subscription ended on an internal error.",
                                "extensions": {"code": ErrorCode.INTERNAL.value}}])
        finally:
            group.ready.set()
            # A finished source takes no one new: a later identical subscription starts afresh
            # (members still reading their END leave on their own).
            if self.groups.get(group.key) is group:
                del self.groups[group.key]
            if source is not None:
                with contextlib.suppress(Exception):
                    await source.aclose()

    def _fail(self, group: Group, errors: list[dict[str, Any]]) -> None:
        for member in list(group.members):
            member.errors = errors
            member.deliver(END)
        if self.groups.get(group.key) is group:
            del self.groups[group.key]

    async def _execute(self, group: Group, event: Any) -> str:
        """One event, executed once for the whole group, with a fresh context; serialized once."""
        self.executions += 1
        executor = self._executor(group, event)
        result = execute_subscription_event(executor)
        if not isinstance(result, ExecutionResult):
            result = await result
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [format_error(error) for error in result.errors]
        return orjson.dumps(body).decode()


def root_fields(document: Any, selection_set: Any, seen: frozenset[str] = frozenset()) -> list[Any]:
    """The operation's root fields, through named and inline fragments (a scope check must see them all)."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    found: list[Any] = []
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            found.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            found += root_fields(document, selection.selection_set, seen)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                found += root_fields(document, fragment.selection_set, seen | {selection.name.value})
    return found
