"""Admissions sent together: the charges that reach the Redis counters in the same moment, and
share a hash tag (one client's counters), go to Redis as one script instead of one each.

A busy client (a fleet of dashboards on one key, a partner's burst) has many requests admitted at
once; each admission was one round trip, whose CPU in this process (~60 µs of redis-py) was most of
a cached answer's cost. Charges are gathered until the event loop has run everything that was ready
(`call_soon`: the requests whose bytes arrived together), then sent in arrival order in one script,
which charges them one after the other exactly as separate scripts would: each request gets the
counts after its own charge, so admission and refusal are decided as before, and the quota stays
exact across replicas (nothing is reserved locally).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

#: a charge: (key, ...) — the key first, as gateway/quota_counters.py's `CounterCharge`
Charge = TypeVar("Charge", bound=tuple)
#: what one charge answers (gateway/quota_counters.py's `Counted`)
Result = TypeVar("Result")

#: the most charges (keys) one script takes: a burst past it is split, so one script stays short
MAX_KEYS = 64


def hash_tag(key: str) -> str:
    """The part of a key a Redis Cluster hashes (between the first `{` and the next `}`)."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start + 1:end] if start >= 0 and end > start + 1 else key


class AdmissionBatches(Generic[Charge, Result]):
    """Charges gathered per hash tag for one turn of the event loop, then sent by `send`, which
    answers one result per charge, in order."""

    def __init__(self, send: Callable[[Sequence[Charge]], Awaitable[list[Result]]]) -> None:
        self._send = send
        self._pending: dict[str, list[tuple[Sequence[Charge], asyncio.Future[list[Result]]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def charge(self, charges: Sequence[Charge]) -> list[Result]:
        """The results of `charges` (one request's, all under one hash tag), sent with the others of this moment."""
        loop = asyncio.get_running_loop()
        tag = hash_tag(charges[0][0])
        waiting: asyncio.Future[list[Result]] = loop.create_future()
        batch = self._pending.get(tag)
        if batch is None:
            batch = self._pending[tag] = []
            loop.call_soon(self._flush, tag)
        batch.append((charges, waiting))
        return await waiting

    def _flush(self, tag: str) -> None:
        batch = self._pending.pop(tag)
        per_script = max(1, MAX_KEYS // len(batch[0][0]))  # requests per script (each charges as many keys)
        for start in range(0, len(batch), per_script):
            part = batch[start:start + per_script]
            # a task of its own: a caller that gives up (its timeout) must not stop the others' answers
            task = asyncio.get_running_loop().create_task(self._deliver(part))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, part: list[tuple[Sequence[Charge], asyncio.Future[list[Result]]]]) -> None:
        try:
            counted = await self._send([charge for charges, _ in part for charge in charges])
        except BaseException as exc:  # every waiter gets the failure (the fallback takes over); re-raised below when not an Exception
            for _, waiting in part:
                if not waiting.done():
                    waiting.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        at = 0
        for charges, waiting in part:
            if not waiting.done():  # done: its caller gave up; the charge stands, as a sent command's would
                waiting.set_result(counted[at:at + len(charges)])
            at += len(charges)
