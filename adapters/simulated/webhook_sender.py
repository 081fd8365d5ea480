"""How a simulated vendor delivers its webhooks: POST in the background, retried as real vendors do.

Each simulator's `webhooks` module (adapters/<dialect>/simulator/webhooks.py) builds the
request (body and headers, signed afresh on each attempt, as real senders do); this sends it,
retrying a failed delivery (connection error, 408, 429, 5xx) with exponential backoff capped at
`max_backoff_s`, waiting at least what a `Retry-After` asks (up to the cap). Real vendors keep
retrying for hours; the simulator's default (8 attempts over ~20 s) rides out a receiver's brief
outage (a restart, its store restarting) without keeping a sandbox busy for long. Nothing waits
for it: the simulator answers its own caller at once, as a vendor's event bus would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx

log = logging.getLogger("parkgate.sim.webhooks")

#: (raw body, headers) for one attempt
Request = Callable[[], tuple[bytes, dict[str, str]]]
#: answers after which the sender tries again
RETRIED = frozenset({408, 429})


def retry_after_s(response: httpx.Response) -> float:
    """What a `Retry-After: <seconds>` asks for; 0 when absent or a date (the backoff decides)."""
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else 0.0


class WebhookSender:
    def __init__(self, url: str, *, attempts: int = 8, backoff_s: float = 0.25, max_backoff_s: float = 5.0,
                 timeout_s: float = 5.0) -> None:
        self.url = url
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.delivered = 0
        self.failed = 0
        #: attempts answered with an error or not answered (each retried, or given up)
        self.retried = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    @property
    def pending(self) -> int:
        """Deliveries not yet answered or given up."""
        return len(self._tasks)

    def send(self, build: Request, url: str | None = None) -> None:
        """Deliver in the background (call from within the event loop)."""
        task = asyncio.get_running_loop().create_task(self._deliver(build, url or self.url))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, build: Request, url: str) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s)
        for attempt in range(self.attempts):
            body, headers = build()
            asked_s = 0.0
            try:
                response = await self._client.post(url, content=body, headers=headers)
                if response.status_code < 500 and response.status_code not in RETRIED:
                    self.delivered += 1
                    if response.status_code >= 400:
                        log.warning("webhook to %s refused: %s", url, response.status_code)
                    return
                asked_s = retry_after_s(response)
                log.info("webhook to %s answered %s (attempt %d)", url, response.status_code, attempt + 1)
            except httpx.HTTPError as exc:
                log.info("webhook to %s failed (attempt %d): %s", url, attempt + 1, exc)
            if attempt + 1 < self.attempts:
                self.retried += 1
                await asyncio.sleep(min(self.max_backoff_s, max(asked_s, self.backoff_s * 2**attempt)))
        self.failed += 1
        log.warning("webhook to %s given up after %d attempts", url, self.attempts)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()
