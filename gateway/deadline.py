"""An operation's deadline for its vendor reads (`limits.operation_timeout_s`).

Each vendor call has its own timeout (a system's `timeout_s`, gateway/config.py), but a read may be
many calls: every page of a year of assigned rights, one after another's answer. So a GraphQL
operation also has one deadline, set when its loaders are made (gateway/loaders.py), that every
vendor read it makes shares: through the cache (the loaders) and live (resolvers/writes.py
`live_read` and `vendor_read`: a plate's rights, its sessions, a record by its id). A read still
waiting then gives up with `UpstreamTimeout` naming its system, which becomes `UPSTREAM_TIMEOUT` on
the fields that needed it: a slow system costs only its own fields, and the client gets the rest of
the answer within the bound instead of waiting a minute.

Writes are never cut short: a write abandoned in flight has an outcome nobody knows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from adapters.errors import UpstreamTimeout

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Deadline:
    at: float  # time.monotonic() when the operation's vendor reads give up
    seconds: float  # the bound it was set with, for the message a client reads

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds, seconds)

    def remaining_s(self) -> float:
        return max(0.0, self.at - time.monotonic())

    async def bound(self, system_id: str, read: Awaitable[T]) -> T:
        """`read`'s answer, or UpstreamTimeout once the deadline passes (the read is cancelled; a
        cache fill it was waiting on is shielded and carries on for the next request)."""
        limit = asyncio.timeout(self.remaining_s())
        try:
            async with limit:
                return await read
        except TimeoutError:
            if not limit.expired():
                raise  # a timeout of the read's own, not ours
            raise UpstreamTimeout(system_id, f"no answer within the operation's deadline "
                                             f"({self.seconds:g} s, limits.operation_timeout_s)") from None
