"""Coroutines run eagerly: up to their first real wait, right away, without a task.

Most async resolvers of a query over data already loaded never wait: the loader's future is
done, so `await` returns at once. Run as graphql-core runs them, each still costs a coroutine
handed up the tree, a `gather` and an asyncio task per sibling field, and several trips through
the event loop, for a value that was in hand. Started eagerly (what Python 3.12's eager task
factory does for tasks), a coroutine that finishes without waiting is just its value; one that
does wait comes back as an awaitable that carries on from where it stopped. Each eager start
runs in a copy of the current context, as a task would, so a context variable a resolver sets
(a tracing span) never leaks into its siblings.

    eagerly(coroutine)          its value, or an awaitable of it
    gather_eagerly(*coroutines) start each, then await those still waiting: as concurrent as
                                `asyncio.gather` (every load is issued first), with no task each
    eager_resolvers(schema)     every async resolver of a schema started eagerly
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Generator
from types import CoroutineType
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLObjectType

T = TypeVar("T")


class Started(Awaitable[T]):
    """A coroutine that was started and is waiting on `waiting_on`: awaiting this carries it on,
    in the context it started in (what `yield from` does, with the context a task would keep)."""

    __slots__ = ("context", "coroutine", "waiting_on")

    def __init__(self, coroutine: Coroutine[Any, Any, T], waiting_on: Any, context: contextvars.Context) -> None:
        self.coroutine = coroutine
        self.waiting_on = waiting_on
        self.context = context

    def __await__(self) -> Generator[Any, Any, T]:
        coroutine, run, waiting_on = self.coroutine, self.context.run, self.waiting_on
        while True:
            if getattr(waiting_on, "_asyncio_future_blocking", None) is False:
                waiting_on._asyncio_future_blocking = True  # re-armed for the task (see `eagerly`)
            try:
                sent = yield waiting_on
            except BaseException as exc:  # noqa: BLE001 - thrown in by the awaiting task (a cancellation): passed on
                try:
                    waiting_on = run(coroutine.throw, exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    waiting_on = run(coroutine.send, sent)
                except StopIteration as done:
                    return done.value


def eagerly(coroutine: Coroutine[Any, Any, T]) -> T | Started[T]:
    """Run `coroutine` until it first waits: its value if it never does (its exception, raised,
    if it fails first), else a `Started` to await for the rest."""
    context = contextvars.copy_context()
    try:
        waiting_on = context.run(coroutine.send, None)
    except StopIteration as done:
        return done.value
    if getattr(waiting_on, "_asyncio_future_blocking", None):
        # An awaited future raises this flag ("a task is taking me") and refuses a second awaiter
        # while it is up; the task that takes it lowers it. No task has it yet, and other coroutines
        # started eagerly may await the same future (a loader's) before one does: lower it as the
        # task would, and `Started` raises it again when it hands the future to its task.
        waiting_on._asyncio_future_blocking = False
    return Started(coroutine, waiting_on, context)


async def gather_eagerly(*coroutines: Coroutine[Any, Any, T]) -> list[T]:
    """The coroutines' values, in order. Each is started before any is awaited, so their loads go
    out together (loaders batch them as with `asyncio.gather`); the first failure is raised, and
    the others, already started, are dropped (not cancelled: no task runs them)."""
    started = [eagerly(coroutine) for coroutine in coroutines]
    return [await value if isinstance(value, Started) else value for value in started]


def _eager_resolver(resolve: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(resolve)
    def run(source: Any, info: Any, **kwargs: Any) -> Any:
        result = resolve(source, info, **kwargs)
        if type(result) is CoroutineType:
            return eagerly(result)
        return result

    return run


def eager_resolvers(schema: strawberry.Schema) -> None:
    """Start every async resolver of `schema` eagerly (after `enforce_scopes`: the check stays first).

    graphql-core takes a resolver's plain value or awaitable alike, and an error raised at once is
    located at the field's path just as one raised after a wait: answers do not change."""
    subscription = schema._schema.subscription_type  # its fields' resolvers pass events through
    for type_name, graphql_type in schema._schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType) or type_name.startswith("__") or graphql_type is subscription:
            continue
        for field in graphql_type.fields.values():
            if field.resolve is not None and inspect.iscoroutinefunction(inspect.unwrap(field.resolve)):
                field.resolve = _eager_resolver(field.resolve)
