"""A circuit breaker per vendor system: stop calling a system that keeps failing, probe it now and then.

CLOSED: calls go through; `failures` consecutive failed calls (unavailable, timeout, 5xx; a
call counts once, after its retries) open the circuit. OPEN: calls fail fast with `CircuitOpen`
without touching the network. After `reset_s` the circuit is HALF_OPEN: exactly one call (the
probe) goes through while the others still fail fast; the probe's success closes the circuit,
its failure opens it again for another `reset_s`.

An answer that is not a failure of the system (2xx, 401/403, 4xx rejections) counts as success:
the system is up. A call that ends without telling anything about the system (cancelled, or
refused by our own rate limit before it was sent) is `release`d: a probe that ends that way
lets the next call probe instead.

The breaker is per process: each replica judges the vendor by its own calls.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import StrEnum

from adapters.errors import UpstreamUnavailable

log = logging.getLogger("parkgate.upstream")


class BreakerState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


class CircuitOpen(UpstreamUnavailable):
    """The call was not made: the system's circuit is open (it is an UpstreamUnavailable)."""


class Probe:
    """The ticket of the one call let through while HALF_OPEN."""

    __slots__ = ()


class CircuitBreaker:
    def __init__(
        self, system_id: str, *, failures: int = 5, reset_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        if reset_s <= 0:
            raise ValueError("reset_s must be positive")
        self.system_id = system_id
        self.failure_threshold = failures
        self.reset_s = reset_s
        self._clock = clock
        self._open = False
        self._opened_at = 0.0
        self._probe: Probe | None = None
        #: consecutive failed calls while CLOSED
        self.consecutive_failures = 0
        # counters (monotonic, for metrics)
        self.opens = 0  # transitions to OPEN, re-opens after a failed probe included
        self.rejected = 0  # calls failed fast
        self.probes = 0  # probes let through
        self.last_error: str | None = None

    @property
    def state(self) -> BreakerState:
        if not self._open:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.reset_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def retry_in_s(self) -> float:
        """Seconds until the next probe may go (0 when closed or already half-open)."""
        if not self._open:
            return 0.0
        return max(0.0, self._opened_at + self.reset_s - self._clock())

    def admit(self) -> Probe | None:
        """Before a call: None to go ahead, a Probe when this call is the half-open probe.

        Raises CircuitOpen when the call must fail fast.
        """
        if not self._open:
            return None
        if self._probe is None and self._clock() - self._opened_at >= self.reset_s:
            self._probe = Probe()
            self.probes += 1
            log.info("%s: circuit half-open, probing", self.system_id)
            return self._probe
        self.rejected += 1
        wait = self.retry_in_s()
        when = f"next probe in {wait:.1f} s" if wait > 0 else "a probe is in flight"
        raise CircuitOpen(
            self.system_id,
            f"circuit open after {self.failure_threshold} consecutive failures, not called ({when};"
            f" last: {self.last_error or 'unknown'})",
        )

    def allows_more_attempts(self, probe: Probe | None) -> bool:
        """Whether a call under way may try again: not once the circuit opened meanwhile, not for a probe."""
        return probe is None and not self._open

    def success(self, probe: Probe | None = None) -> None:
        if probe is not None and probe is self._probe:
            self._probe = None
        self.consecutive_failures = 0
        if self._open:
            # The probe, or a call that started before the circuit opened: the system answers.
            self._open = False
            self._probe = None
            log.warning("%s: circuit closed, the system answers again", self.system_id)

    def failure(self, probe: Probe | None = None, error: str | None = None) -> None:
        self.last_error = error or self.last_error
        if self._open:
            if probe is not None and probe is self._probe:
                self._probe = None
                self._trip(reopen=True)
            # A call that started before the circuit opened: it opened already, nothing to add.
            return
        self.consecutive_failures += 1
        if self.consecutive_failures >= self.failure_threshold:
            self._trip(reopen=False)

    def release(self, probe: Probe | None = None) -> None:
        """The call told nothing about the system: a probe that ends so lets the next call probe."""
        if probe is not None and probe is self._probe:
            self._probe = None

    def _trip(self, *, reopen: bool) -> None:
        self._open = True
        self._opened_at = self._clock()
        self.opens += 1
        self.consecutive_failures = 0
        log.warning(
            "%s: circuit %s for %.1f s (%s)",
            self.system_id, "re-opened after a failed probe" if reopen else f"opened after {self.failure_threshold}"
            " consecutive failures", self.reset_s, self.last_error,
        )

    def snapshot(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "consecutive_failures": self.consecutive_failures,
            "opens": self.opens,
            "rejected": self.rejected,
            "probes": self.probes,
            "retry_in_s": round(self.retry_in_s(), 3),
        }
