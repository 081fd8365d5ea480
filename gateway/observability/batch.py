"""Figures made on the request path, handed to prometheus_client together.

A cached answer counts four counters and observes one histogram. prometheus_client takes a lock
for every value it changes (and with several workers writes it to a shared file): about half a
microsecond per counter and two per observation, a tenth of a cached answer's time in process.
Here each is a dict update (an observation: its bucket found by bisection), and the lock or the
file is paid once per value per hand-over: before every exposition, and at most `FLUSH_S` after
the first figure since the last one. This process's /metrics is exact; with several workers,
another worker's figures reach it within `FLUSH_S`.

A histogram is handed over into its child's bucket and sum values (`_buckets`, `_sum`): the
only way to add n observations in one step. prometheus_client has kept them since its first
releases; tests/gateway/test_metrics_batch.py compares a batched exposition with one written
directly, so a release that moves them fails there, not in production.
"""

from __future__ import annotations

import asyncio
import math
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any


class FigureBatch:
    """Counter increments and histogram observations not yet handed to prometheus_client."""

    FLUSH_S = 1.0

    def __init__(self) -> None:
        self._counted: dict[Any, float] = {}  # counter child -> amount
        self._observed: dict[Any, list[float]] = {}  # histogram child -> [sum, count per bucket...]
        self._timer: asyncio.TimerHandle | None = None

    def _arm(self) -> bool:
        """Set the hand-over's timer; False without an event loop (the caller hands over at once)."""
        try:
            self._timer = asyncio.get_running_loop().call_later(self.FLUSH_S, self.flush)
        except RuntimeError:  # a command, a synchronous caller: nothing would ever flush
            return False
        return True

    def count(self, counter: Any, amount: float) -> None:
        if self._timer is None and not self._arm():
            counter.inc(amount)
            return
        counted = self._counted
        counted[counter] = counted.get(counter, 0) + amount

    def observe(self, histogram: Any, bounds: Sequence[float], amount: float) -> None:
        if self._timer is None and not self._arm():
            histogram.observe(amount)
            return
        pending = self._observed.get(histogram)
        if pending is None:
            pending = self._observed[histogram] = [0.0] * (len(bounds) + 1)
        pending[0] += amount
        pending[1 + bisect_left(bounds, amount)] += 1  # the first bound >= amount, as prometheus_client's

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        counted, self._counted = self._counted, {}
        for counter, amount in counted.items():
            counter.inc(amount)
        observed, self._observed = self._observed, {}
        for histogram, (total, *buckets) in observed.items():
            histogram._sum.inc(total)  # n observations in one step (the module docstring)
            for bucket, n in zip(histogram._buckets, buckets, strict=True):
                if n:
                    bucket.inc(n)


class BatchedCounter:
    """A counter child whose increments go through a `FigureBatch`."""

    __slots__ = ("_batch", "_counter")

    def __init__(self, counter: Any, batch: FigureBatch) -> None:
        self._counter = counter
        self._batch = batch

    def inc(self, amount: float = 1) -> None:
        if amount < 0:  # refused where it is made, as prometheus_client's own counter does
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self._batch.count(self._counter, amount)

    def dec(self, amount: float = 1) -> None:
        raise TypeError("a counter only goes up")

    def set(self, value: float) -> None:
        raise TypeError("a counter only goes up")

    def observe(self, amount: float) -> None:
        raise TypeError("a counter is not a histogram")


class BatchedHistogram:
    """A histogram child whose observations go through a `FigureBatch`."""

    __slots__ = ("_batch", "_bounds", "_histogram")

    def __init__(self, histogram: Any, buckets: Sequence[float], batch: FigureBatch) -> None:
        self._histogram = histogram
        self._bounds = (*buckets, math.inf)  # prometheus_client's upper bounds: the given ones and +Inf
        self._batch = batch

    def observe(self, amount: float) -> None:
        self._batch.observe(self._histogram, self._bounds, amount)

    def inc(self, amount: float = 1) -> None:
        raise TypeError("a histogram is observed")

    def dec(self, amount: float = 1) -> None:
        raise TypeError("a histogram is observed")

    def set(self, value: float) -> None:
        raise TypeError("a histogram is observed")
