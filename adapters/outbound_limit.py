"""How hard parkgate may call one vendor: calls in flight at once, and calls per second.

`OutboundLimit` holds both for one system. A request takes a concurrency slot first, then a
rate token, and only then goes on the wire: a token is never spent by a call that then waits
for a slot, so calls that waited for slots cannot leave in a burst.

The rate limit is a token bucket (as GCRA: one timestamp, no refill task) per process. With N
replicas each keeps its own bucket, so set `rate_limit_per_s` to the contract divided by N (or
share one bucket: the same GCRA is one Redis key and one atomic script, `SET tat` when
`tat - now <= burst`, should a contract ever need the full rate from every replica).

The default burst is 1: calls are spaced 1/rate apart, so no window of any length sees more
than the contract's rate (a burst of b lets b calls go at once after a quiet spell, and then at
most rate·t + b in any window of t seconds).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from adapters.errors import UpstreamTimeout, UpstreamUnavailable


class OutboundThrottled(UpstreamUnavailable):
    """The call was not made: waiting for the vendor's rate limit would outlast its deadline."""


class SlotTimeout(UpstreamTimeout):
    """The call was not made: no concurrency slot toward the vendor came free before its deadline."""


class TokenBucket:
    """`rate_per_s` calls per second with bursts of at most `burst`, reserved in arrival order."""

    def __init__(self, rate_per_s: float, burst: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._interval = 1.0 / rate_per_s
        self._tolerance = (burst - 1) * self._interval
        self._tat = 0.0  # theoretical arrival time of the next call
        self._clock = clock

    def reserve(self, max_wait_s: float) -> float | None:
        """Take the next slot: the seconds to wait for it, or None (nothing taken) if over `max_wait_s`."""
        now = self._clock()
        tat = max(self._tat, now)
        wait = max(0.0, tat - self._tolerance - now)
        if wait > max_wait_s:
            return None
        self._tat = tat + self._interval
        return wait


class OutboundLimit:
    def __init__(
        self, system_id: str, *, max_concurrency: int = 16, rate_limit_per_s: float | None = None, burst: int = 1
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.system_id = system_id
        self.max_concurrency = max_concurrency
        self._slots = asyncio.Semaphore(max_concurrency)
        self.bucket = TokenBucket(rate_limit_per_s, burst) if rate_limit_per_s else None
        self.in_flight = 0
        self.peak_in_flight = 0
        self.throttled = 0  # calls refused because the rate wait would outlast their deadline
        self.rate_wait_s = 0.0  # total time spent waiting for rate tokens

    async def acquire(self, deadline: float) -> None:
        """Take one concurrency slot and one rate token before sending one request; `release` after.

        `deadline` is on the event loop's clock. Waiting for the slot is bounded by the caller's
        own timeout; a rate wait that would end after the deadline fails now with OutboundThrottled
        (the slot is given back).
        """
        await self._slots.acquire()
        try:
            if self.bucket is not None:
                wait = self.bucket.reserve(deadline - asyncio.get_running_loop().time())
                if wait is None:
                    self.throttled += 1
                    raise OutboundThrottled(
                        self.system_id,
                        f"rate limit toward the vendor ({self.bucket.rate_per_s:g}/s): no slot before the deadline",
                    )
                if wait > 0:
                    self.rate_wait_s += wait
                    await asyncio.sleep(wait)
        except BaseException:
            self._slots.release()
            raise
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def release(self) -> None:
        self.in_flight -= 1
        self._slots.release()
