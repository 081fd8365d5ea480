"""Idempotency keys for writes: a retried request returns the first result and acts once.

    result = await store.run(scope, key, fingerprint, work)

`scope` is the client and the operation (`<client id>:createReservation`), `fingerprint` a hash
of the request's arguments. The first request with a key claims it and runs `work`; its result
(JSON-able) is kept for `ttl_s`. A later request with the same key and fingerprint gets that
result without running anything; with another fingerprint it is a CONFLICT. A request that
arrives while the first is still running waits for it (up to `wait_s`), then is told to retry.
When `work` raises, the claim is released: nothing happened, so the client may try again.

This store answers retries at the gateway; the write itself also carries a reference derived
from the same key (`reference_for`), which the vendor refuses to see twice. So even a gateway
that crashed between the vendor's answer and storing it books nothing twice on the retry.

Backends: in memory (one process) or Redis (every replica; `SET NX PX` claims). A Redis that does
not answer is waited for, up to `store_wait_s` (5 s), before the write is refused with 503: a restart
or failover of Redis takes a second or two, and a write that waits it out is answered once, where a
503 would send every client's retry into the moment Redis comes back. Without the store nothing is
claimed and nothing is done: a retry elsewhere could act twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import orjson

from gateway.errors import STORE_ERRORS, ErrorCode, GatewayError

log = logging.getLogger("parkgate.idempotency")

DEFAULT_TTL_S = 24 * 3600
CLAIM_TTL_S = 60  # a claim whose holder died is given up after this long
WAIT_S = 10.0
MAX_KEY_LENGTH = 255
#: how long a write waits for a store that does not answer (a Redis restart or failover) before 503
STORE_WAIT_S = 5.0
STORE_RETRY_EVERY_S = 0.1

Work = Callable[[], Awaitable[Any]]
T = TypeVar("T")


def fingerprint_of(arguments: Any) -> str:
    return hashlib.sha256(orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


def reference_for(client_id: str, operation: str, key: str, fingerprint: str) -> str:
    """The reference a write carries to its vendor: the same for every retry of one request, and
    another for another request — so a key reused once this store has forgotten it (a restart of
    the memory store, 24 h later) makes a new write, never hands back an unrelated first one."""
    digest = hashlib.sha256(f"{client_id}\x00{operation}\x00{key}\x00{fingerprint}".encode()).hexdigest()
    return f"pg-{digest[:32]}"


def check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise GatewayError(ErrorCode.BAD_USER_INPUT, f"`idempotencyKey` must be 1 to {MAX_KEY_LENGTH} printable "
                                                     "characters (a UUID is a good choice).", argument="idempotencyKey")


def reused(key_scope: str) -> GatewayError:
    return GatewayError(ErrorCode.CONFLICT, "This idempotency key was used for a different request; "
                                            "use a new key for a new request.", reason="IDEMPOTENCY_KEY_REUSED")


def in_progress() -> GatewayError:
    return GatewayError(ErrorCode.CONFLICT, "A request with this idempotency key is still being processed; "
                                            "retry it in a moment.", reason="IDEMPOTENCY_KEY_IN_USE")


def unreachable() -> GatewayError:
    return GatewayError(ErrorCode.GATEWAY_UNAVAILABLE, "The idempotency store is unreachable; nothing was done, retry later.")


class IdempotencyStore(Protocol):
    async def run(self, scope: str, key: str, fingerprint: str, work: Work) -> Any: ...

    async def aclose(self) -> None: ...


class MemoryIdempotency:
    def __init__(self, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.ttl_s = ttl_s
        # (scope, key) -> (fingerprint, future of the result, expires at)
        self._entries: dict[tuple[str, str], tuple[str, asyncio.Future[Any], float]] = {}

    async def run(self, scope: str, key: str, fingerprint: str, work: Work) -> Any:
        now = time.monotonic()
        self._expire(now)
        entry = self._entries.get((scope, key))
        if entry is not None:
            if entry[0] != fingerprint:
                raise reused(scope)
            try:
                return await asyncio.wait_for(asyncio.shield(entry[1]), WAIT_S)
            except TimeoutError:
                raise in_progress() from None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._entries[(scope, key)] = (fingerprint, future, now + self.ttl_s)
        try:
            result = await work()
        except BaseException as exc:
            del self._entries[(scope, key)]
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else needs to
            raise
        future.set_result(result)
        return result

    def _expire(self, now: float) -> None:
        if len(self._entries) < 1024:
            return
        for k in [k for k, (_, f, expires) in self._entries.items() if expires < now and f.done()]:
            del self._entries[k]

    async def aclose(self) -> None:
        pass


class RedisIdempotency:
    """Claims and results in Redis under `<prefix>idem:`, shared by every replica. Each claim is one
    key, read and written alone (no hash tag needed: on a cluster the claims spread over the nodes)."""

    def __init__(self, client: Any, prefix: str, ttl_s: float = DEFAULT_TTL_S, *,
                 store_wait_s: float = STORE_WAIT_S) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_ms = int(ttl_s * 1000)
        self.store_wait_s = store_wait_s

    @classmethod
    def from_url(cls, url: str, prefix: str, *, store_wait_s: float = STORE_WAIT_S) -> RedisIdempotency:
        from gateway.redis_connect import connect

        return cls(connect(url, timeout_s=2.0, connect_timeout_s=1.0), prefix, store_wait_s=store_wait_s)

    async def _patiently(self, command: Callable[[], Awaitable[T]]) -> T:
        """`command()`, again every STORE_RETRY_EVERY_S while the store does not answer, for up to
        `store_wait_s`; then its error. Only store errors are waited out: anything else is not passing."""
        deadline = time.monotonic() + self.store_wait_s
        while True:
            try:
                return await command()
            except STORE_ERRORS:
                if time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(STORE_RETRY_EVERY_S)

    async def run(self, scope: str, key: str, fingerprint: str, work: Work) -> Any:
        digest = hashlib.sha256(f"{scope}\x00{key}".encode()).hexdigest()
        name = f"{self.prefix}idem:{digest}"
        # whose claim it is: a claim whose reply was lost (Redis went away after taking it) is taken again
        claim = orjson.dumps({"fp": fingerprint, "state": "pending", "by": secrets.token_hex(8)})
        try:
            claimed = await self._patiently(lambda: self._claim(name, claim))
        except Exception as exc:  # without the store a retry could act twice: refuse
            raise unreachable() from exc
        if not claimed:
            return await self._replay(name, fingerprint)
        try:
            result = await work()
        except BaseException:
            await self._release(name)
            raise
        done = orjson.dumps({"fp": fingerprint, "state": "done", "result": result})
        try:
            await self._patiently(lambda: self.client.set(name, done, px=self.ttl_ms))
        except Exception:  # noqa: BLE001 - the write happened: answer it; a retry reaches the vendor, which
            # refuses the same reference twice and hands back this record
            log.warning("could not keep the result of an idempotent write; retries will ask the vendor")
            await self._release(name)
        return result

    async def _claim(self, name: str, claim: bytes) -> bool:
        return bool(await self.client.set(name, claim, nx=True, px=CLAIM_TTL_S * 1000)) or (
            await self.client.get(name) == claim)

    async def _release(self, name: str) -> None:
        try:
            await self.client.delete(name)
        except Exception:  # noqa: BLE001 - the claim lapses on its own after CLAIM_TTL_S
            log.warning("could not release an idempotency claim; it lapses in %s s", CLAIM_TTL_S)

    async def _replay(self, name: str, fingerprint: str) -> Any:
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                raw = await self._patiently(lambda: self.client.get(name))
            except Exception as exc:  # the first answer cannot be read now: nothing is done twice, retry later
                raise unreachable() from exc
            if raw is None:
                raise in_progress()  # the first attempt failed and released it: the client may retry
            entry = orjson.loads(raw)
            if entry["fp"] != fingerprint:
                raise reused(name)
            if entry["state"] == "done":
                return entry["result"]
            if time.monotonic() > deadline:
                raise in_progress()
            await asyncio.sleep(0.05)

    async def aclose(self) -> None:
        await self.client.aclose()
