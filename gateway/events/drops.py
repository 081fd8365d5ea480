"""What a subscriber too slow to keep up lost, logged at most every `EVERY_S` seconds with how many.

A queue that is full drops its oldest item rather than hold every other subscriber back
(gateway/events/bus.py, gateway/events/hub.py). At a big operator's burst (a poll of 5,000 garages
publishes thousands of events at once) a warning per dropped item was thousands of log lines a
second; one line saying how many went is what an operator can read.
"""

from __future__ import annotations

import logging
import time

#: seconds between two warnings about drops of one kind
EVERY_S = 10.0


class Drops:
    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what  # "events", "payloads": what the subscriber's queue holds
        self.total = 0
        self._unreported = 0
        self._last = float("-inf")

    def note(self) -> None:
        """One item dropped from a full queue: warned of now, or with the others at the next warning."""
        self.total += 1
        self._unreported += 1
        now = time.monotonic()
        if now - self._last >= EVERY_S:
            self.log.warning("a subscriber is too slow: dropped its oldest %s (%d since the last warning, "
                             "%d in all)", self.what, self._unreported, self.total)
            self._unreported, self._last = 0, now
