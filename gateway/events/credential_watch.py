"""Open subscriptions stay authorized: each stream's credentials are checked again on a timer that
does not care whether the stream is busy or idle, and at once when the admin path announces that
the stream's client changed (gateway/auth/changes.py: every replica hears it).

A stream must end when its credential stops working — the client revoked, its key revoked or past
its rotation grace, its access token expired — or when its client's scopes or facilities changed:
its shared execution was set up for the old ones (gateway/events/hub.py). The transport is told
why with a `StreamRefusal` and ends the stream in its own way
(gateway/events/subscriptions_http.py).

Follow a notice forward: `_changed(client_id)` → the authenticator forgets what it cached of the
client → `check(that client's watches)` → one authentication per distinct credential → each watch
refused gets `on_end(refusal)`. The timer (`_every_interval`) runs the same `check` over every watch.

What it costs: nothing per event. One check per distinct credential per round, however many streams
share that credential, read through the authenticator's short cache; a round is at most
`CONCURRENT_CHECKS` store reads at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.auth.authenticate import Authenticator, AuthError, Principal, permission_signature
from gateway.auth.changes import ClientChanges
from gateway.errors import ErrorCode, StoreUnavailable

log = logging.getLogger("parkgate.subscriptions")

#: credentials authenticated at the same time during one round
CONCURRENT_CHECKS = 32

Credentials = tuple[str | None, str | None]  # (Authorization header, API key) as the stream sent them


@dataclass(frozen=True)
class StreamRefusal:
    """Why a stream must end, as the coded GraphQL error its client gets."""

    code: ErrorCode
    message: str

    def error(self) -> dict[str, Any]:
        return {"message": self.message, "extensions": {"code": self.code.value}}


class Watch:
    """One stream's (or one WebSocket's) credentials and the principal it was opened with.
    `on_end` is called once, and must not wait for anything: it only starts the ending."""

    __slots__ = ("credentials", "on_end", "principal")

    def __init__(self, principal: Principal, credentials: Credentials, on_end: Callable[[StreamRefusal], None]) -> None:
        self.principal = principal
        self.credentials = credentials
        self.on_end = on_end


class CredentialWatch:
    def __init__(self, authenticator: Authenticator, client_changes: ClientChanges, interval_s: float) -> None:
        self.authenticator = authenticator
        self.client_changes = client_changes
        self.interval_s = interval_s
        self.watches: dict[str, set[Watch]] = defaultdict(set)  # client id -> its open streams here
        self._timer: asyncio.Task[None] | None = None
        self._stop_listening: Callable[[], None] | None = None
        self._checks: set[asyncio.Task[None]] = set()  # checks started by notices

    def watch(self, principal: Principal, credentials: Credentials, on_end: Callable[[StreamRefusal], None]) -> Watch:
        """Keep checking this stream until `unwatch`. A principal of a gateway without
        authentication has nothing to check (and nothing that can be revoked)."""
        watch = Watch(principal, credentials, on_end)
        if principal.via == "none":
            return watch
        self.watches[principal.client_id].add(watch)
        if self._stop_listening is None:
            self._stop_listening = self.client_changes.listen(self._changed)
        if self._timer is None or self._timer.done():
            self._timer = asyncio.get_running_loop().create_task(self._every_interval(), name="credential-watch")
        return watch

    def unwatch(self, watch: Watch) -> None:
        """Idempotent."""
        watches = self.watches.get(watch.principal.client_id)
        if watches is not None:
            watches.discard(watch)
            if not watches:
                del self.watches[watch.principal.client_id]

    async def _every_interval(self) -> None:
        while self.watches:  # stops with the last stream; the next `watch` starts it again
            await asyncio.sleep(self.interval_s)
            await self.check([watch for watches in self.watches.values() for watch in watches])

    def _changed(self, client_id: str) -> None:
        """A notice: this client changed somewhere. Its streams here are checked now, past the cache."""
        watches = self.watches.get(client_id)
        if not watches:
            return
        self.authenticator.forget(client_id)
        task = asyncio.get_running_loop().create_task(self.check(list(watches)))
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def check(self, watches: list[Watch]) -> None:
        """Authenticate each distinct credential once; end every watch it no longer allows."""
        sharing: dict[Credentials, list[Watch]] = defaultdict(list)
        for watch in watches:
            sharing[watch.credentials].append(watch)
        gate = asyncio.Semaphore(CONCURRENT_CHECKS)

        async def check_one(credentials: Credentials, watchers: list[Watch]) -> None:
            async with gate:
                now = await self._authenticate(credentials)
            for watch in watchers:
                refusal = stream_refusal(watch.principal, now)
                if refusal is not None and watch in self.watches.get(watch.principal.client_id, ()):
                    self.unwatch(watch)
                    watch.on_end(refusal)

        await asyncio.gather(*(check_one(c, w) for c, w in sharing.items()))

    async def _authenticate(self, credentials: Credentials) -> Principal | StreamRefusal | None:
        """Who the credential is now; a refusal; or None when that cannot be known (store down)."""
        try:
            return await self.authenticator.authenticate(*credentials)
        except AuthError as exc:
            return StreamRefusal(ErrorCode.UNAUTHENTICATED, exc.message)
        except StoreUnavailable:
            return None  # nobody can be re-checked, nor revoked, while the store is down
        except Exception:  # a bug here must not end streams, nor stop the timer
            log.exception("re-checking a subscription's credentials failed")
            return None

    async def aclose(self) -> None:
        if self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None
        tasks = [t for t in (self._timer, *self._checks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def stream_refusal(opened_as: Principal, now: Principal | StreamRefusal | None) -> StreamRefusal | None:
    """Why a stream opened as `opened_as` must end, given who its credential is `now`; or None."""
    if now is None or isinstance(now, StreamRefusal):
        return now
    if permission_signature(now) != permission_signature(opened_as):
        return StreamRefusal(ErrorCode.FORBIDDEN, "This client's scopes or facilities changed: subscribe again.")
    return None
