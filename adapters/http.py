"""The HTTP hop every adapter makes: one pooled client per system, resilience and errors handled once.

Adapters call `VendorHTTP.request`; whatever goes wrong on the wire comes back as one of the
three upstream errors, so no adapter handles httpx exceptions itself. Each call, in order:

1. the system's circuit breaker (adapters/breaker.py) lets it through or fails it fast
   (`CircuitOpen`, an UpstreamUnavailable) without touching the network;
2. a total deadline (`timeout_s`, an asyncio timeout) covers everything below: waiting for a
   slot, every attempt, every backoff. Each attempt also has httpx's connect timeout
   (`connect_timeout_s`) and read timeout (`timeout_s`);
3. each attempt takes a concurrency slot (`max_concurrency` in flight) and a token of the
   outbound rate limit (`rate_limit_per_s`), see adapters/outbound_limit.py;
4. idempotent calls (GET/HEAD/OPTIONS, or `idempotent=True`) are retried by tenacity up to
   `retries` extra times when the system was unavailable (connect error, connect timeout,
   502/503/504) or answered 429: exponential backoff with jitter (50 ms doubling to 400 ms),
   or the `Retry-After` the system sent. A retry that cannot start before the deadline is not
   made and the last error is raised instead; a read that timed out is not retried (the read
   timeout is the deadline). A half-open probe is never retried, and no call retries once
   the circuit opened meanwhile.

Per call, the breaker counts one failure when the call finally fails with unavailable, timeout
or a 5xx; an answer (2xx, 304, 401/403, any other 4xx) is a success. Counters for metrics are in
`VendorHTTP.counters` (plain attributes) and `VendorHTTP.metrics` (a dict). A `HopObserver`
(`VendorHTTP.observe`; the gateway's is gateway/observability/hop.py) hears each call, attempt,
retry and breaker state, and may add headers to the call (a trace's `traceparent`).

The hop's CPU cost (bench/http_hop_bench.py measures it against a bare aiohttp session):
httpx's own transport (httpcore) costs about 5x aiohttp's CPU per call, so the client keeps
the httpx API (httpx.Request/Response/Auth, transports, `transport=` for tests) over aiohttp:
`VendorTransport` (httpx_aiohttp's transport, reading the body in one go and mapping errors
exactly), no cookie jar (`_VendorClient`), and each path's absolute URL built once (httpx
parses URLs slowly). Tenacity only comes in once a first attempt has failed. A `transport`
given to the constructor (tests: `httpx.MockTransport`) replaces aiohttp's.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import aiohttp
import httpx
import orjson
import yarl
from httpx_aiohttp import AiohttpTransport
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from adapters.breaker import BreakerState, CircuitBreaker, CircuitOpen, Probe
from adapters.errors import UpstreamError, UpstreamRejected, UpstreamTimeout, UpstreamUnavailable
from adapters.outbound_limit import OutboundLimit, OutboundThrottled, SlotTimeout

UNAVAILABLE_STATUSES = frozenset({502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: backoff between attempts: 50 ms doubling up to 400 ms, plus up to 50 ms of jitter
BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 0.4
BACKOFF_JITTER_S = 0.05
#: a retry is only made if this much of the deadline is left once its wait is over
MIN_ATTEMPT_S = 0.02
#: idle pooled connections are dropped before common vendor servers drop them (uvicorn, nginx:
#: 5 s or more), so a reused connection is rarely one the server just closed
KEEPALIVE_EXPIRY_S = 4.0

_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.RequestError, aiohttp.ClientError)


class HopObserver(Protocol):
    """What watches the hop to one system from outside (metrics, traces); every method must be cheap."""

    def call_started(self, method: str, path: str, headers: dict[str, str]) -> Any:
        """A call begins; may add headers to it. What it returns is handed back to `call_ended`."""

    def call_ended(self, started: Any, outcome: str, breaker: BreakerState) -> None:
        """The call is over: `outcome` is "ok" or its failure's kind (`failure_kind`)."""

    def attempt(self, seconds: float) -> None:
        """One attempt went on the wire and took this long (answer or failure)."""

    def retry(self) -> None: ...


def failure_kind(exc: UpstreamError) -> str:
    """A failed call's kind, as counted in `UpstreamCounters.failures` and by observers."""
    if isinstance(exc, SlotTimeout):
        return "queue_timeout"
    if isinstance(exc, CircuitOpen):
        return "circuit_open"
    if isinstance(exc, OutboundThrottled):
        return "throttled"
    if isinstance(exc, UpstreamRejected):
        return "rejected"
    if isinstance(exc, UpstreamTimeout):
        return "timeout"
    if isinstance(exc, UpstreamUnavailable):
        return "unavailable"
    return "error"


@dataclass
class UpstreamCounters:
    """What happened on the hop to one system since start; every field only grows (Prometheus counters)."""

    calls: int = 0  # request() calls
    requests: int = 0  # attempts sent on the wire (calls + retries, less those that failed fast)
    retries: int = 0
    #: failed calls by kind: unavailable, timeout, error (5xx), rejected (4xx), circuit_open,
    #: throttled (our rate limit), queue_timeout (no concurrency slot before the deadline)
    failures: Counter[str] = field(default_factory=Counter)
    latency_ms_sum: float = 0.0  # per attempt on the wire, answer or failure
    latency_count: int = 0
    latency_ms_max: float = 0.0

    def observe(self, latency_ms: float) -> None:
        self.latency_ms_sum += latency_ms
        self.latency_count += 1
        self.latency_ms_max = max(self.latency_ms_max, latency_ms)


class _Call:
    """One request() call: what its attempts share."""

    __slots__ = ("deadline", "http", "kwargs", "last_error", "method", "on_wire", "path", "probe", "sent", "url")

    def __init__(
        self,
        http: VendorHTTP,
        method: str,
        path: str,
        url: httpx.URL,
        kwargs: dict[str, Any],
        deadline: float,
        probe: Probe | None,
    ) -> None:
        self.http = http
        self.method = method
        self.path = path  # for messages: never the host
        self.url = url
        self.kwargs = kwargs
        self.deadline = deadline
        self.probe = probe
        self.sent = 0  # attempts that went on the wire
        self.on_wire = False  # an attempt is on the wire right now
        self.last_error: UpstreamError | None = None


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, CircuitOpen | OutboundThrottled):
        return False
    if isinstance(exc, UpstreamUnavailable):
        return True
    if isinstance(exc, UpstreamRejected):
        return exc.status == 429
    # A connect timeout: the request never left, and the deadline still bounds the retry.
    return isinstance(exc, UpstreamTimeout) and exc.connect_phase


class _wait_retry_after(wait_base):
    """The system's Retry-After when it sent one, else exponential backoff with jitter."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = exc.retry_after_s if isinstance(exc, UpstreamError) else None
        return retry_after if retry_after is not None else self.fallback(retry_state)


class _stop_at_deadline(stop_base):
    """Stop when the wait would leave no time for the attempt, or the circuit opened meanwhile."""

    def __call__(self, retry_state: RetryCallState) -> bool:
        call: _Call = retry_state.args[0]
        if not call.http.breaker.allows_more_attempts(call.probe):
            return True
        left = call.deadline - asyncio.get_running_loop().time()
        return retry_state.upcoming_sleep + MIN_ATTEMPT_S > left


_WAIT = _wait_retry_after(
    wait_exponential(multiplier=BACKOFF_FIRST_S, max=BACKOFF_MAX_S) + wait_random(0, BACKOFF_JITTER_S)
)
_RETRY = retry_if_exception(_retryable)
_DEADLINE_STOP = _stop_at_deadline()


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header as seconds from now (delta-seconds or an HTTP date), None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - time.time()
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


class VendorTransport(AiohttpTransport):
    """httpx_aiohttp's transport, reading each answer in full and mapping aiohttp's errors exactly.

    VendorHTTP never streams, so the body is read inside the aiohttp request context (the
    connection goes back to the pool at once) and handed to httpx as content. httpx_aiohttp
    0.2 maps a refused connection or a dropped one to ConnectTimeout; here each aiohttp error
    becomes the httpx error that says what happened.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            content = request.content
        except httpx.RequestNotRead:  # a streamed upload: the library's own path
            return await super().handle_async_request(request)
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        timeout = request.extensions.get("timeout", {})
        try:
            async with self.client.request(
                request.method,
                yarl.URL(str(request.url), encoded=True),  # httpx has encoded it already
                headers=request.headers,
                data=content or None,
                allow_redirects=False,
                auto_decompress=False,  # httpx decodes, as it would with its own transport
                compress=False,
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeout.get("connect"), sock_read=timeout.get("read"), connect=timeout.get("pool")
                ),
                server_hostname=request.extensions.get("sni_hostname"),
                **self._proxy_options(),
            ) as answer:
                body = await answer.read()
        except aiohttp.ClientError as exc:
            raise _httpx_error(exc) from exc
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if answer.reason:
            extensions["reason_phrase"] = answer.reason.encode()
        return httpx.Response(
            answer.status, headers=answer.raw_headers, content=body, request=request, extensions=extensions
        )

    def _proxy_options(self) -> dict[str, Any]:
        proxy = self.proxy
        if proxy is None:
            return {}
        return {
            "proxy": str(proxy.url),
            "proxy_auth": aiohttp.BasicAuth(*proxy.auth) if proxy.auth else None,
            "proxy_headers": proxy.headers,
        }


def _httpx_error(exc: BaseException) -> httpx.TransportError:
    """The httpx error for an aiohttp one (most specific first)."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientOSError):
        return httpx.ReadError(message)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(message)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(message)
    return httpx.TransportError(message)


def pool_limits(max_connections: int) -> httpx.Limits:
    """Pool size, and idle connections dropped before common vendor servers drop them (see KEEPALIVE_EXPIRY_S)."""
    return httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections, keepalive_expiry=KEEPALIVE_EXPIRY_S
    )


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing: one vendor answer's cookies must not ride along on later calls."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _VendorClient(httpx.AsyncClient):
    """httpx's client over VendorTransport (proxies from the environment too), without a cookie jar.

    No cookie jar: a vendor's cookies must not ride along on later calls, and parsing every
    answer for them costs CPU.
    """

    def _init_transport(self, *args: Any, **kwargs: Any) -> httpx.AsyncBaseTransport:
        if kwargs.get("transport") is not None:
            return super()._init_transport(*args, **kwargs)
        return VendorTransport(**_transport_options(kwargs))

    def _init_proxy_transport(self, proxy: httpx.Proxy, *args: Any, **kwargs: Any) -> httpx.AsyncBaseTransport:
        if proxy.url.scheme not in ("http", "https"):  # aiohttp has no SOCKS
            return super()._init_proxy_transport(proxy, *args, **kwargs)
        return VendorTransport(proxy=proxy, **_transport_options(kwargs))

    _jar = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        pass


def _transport_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: kwargs[k] for k in ("verify", "cert", "trust_env", "limits") if k in kwargs}


#: distinct paths whose absolute URL is kept (paths carrying ids are many; beyond this, start over)
URL_CACHE_SIZE = 512


_WORD = re.compile(r"[A-Za-z][A-Za-z_.-]*|v\d+")  # a path segment or query key that is part of an API's shape


def redacted_url(url: httpx.URL) -> str:
    """`url` as the logs may show it: the vendor's host and the words of its API, every other path
    segment and every query value as `*`. Paths hold ids a client chose (a reservation id, a plate),
    and those may hold anything, a card number included."""
    path = "/".join(segment if not segment or _WORD.fullmatch(segment) else "*" for segment in url.path.split("/"))
    query = "&".join(f"{key if _WORD.fullmatch(key) else '*'}=*" for key, _ in url.params.multi_items())
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}{path}" + (f"?{query}" if query else "")


class RedactedVendorURLs(logging.Filter):
    """httpx logs each request's URL at INFO ("HTTP Request: GET <url> ..."): log it redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) > 1 and isinstance(args[1], httpx.URL):
            record.args = (args[0], redacted_url(args[1]), *args[2:])
        return True


def redact_httpx_logs() -> None:
    """Install `RedactedVendorURLs` on httpx's logger, once."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, RedactedVendorURLs) for f in logger.filters):
        logger.addFilter(RedactedVendorURLs())


class VendorHTTP:
    def __init__(
        self,
        system_id: str,
        base_url: str,
        *,
        timeout_s: float = 5.0,
        connect_timeout_s: float = 2.0,
        max_connections: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retries: int = 2,
        max_concurrency: int = 16,
        rate_limit_per_s: float | None = None,
        rate_burst: int = 1,
        breaker_failures: int = 5,
        breaker_reset_s: float = 10.0,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.system_id = system_id
        self.timeout_s = timeout_s
        self.retries = max(0, retries)
        redact_httpx_logs()
        # No more pooled connections than calls we allow in flight.
        max_connections = max_connections or max_concurrency
        self._client = _VendorClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout_s, connect=min(connect_timeout_s, timeout_s)),
            limits=pool_limits(max_connections),
            transport=transport,
            follow_redirects=False,
        )
        self.breaker = CircuitBreaker(system_id, failures=breaker_failures, reset_s=breaker_reset_s)
        self.limit = OutboundLimit(
            system_id, max_concurrency=max_concurrency, rate_limit_per_s=rate_limit_per_s, burst=rate_burst
        )
        self.counters = UpstreamCounters()
        self._urls: dict[str, httpx.URL] = {}
        self.observer: HopObserver | None = None

    def observe(self, observer: HopObserver) -> None:
        """Have `observer` hear every call from now on (one per hop)."""
        self.observer = observer

    @property
    def breaker_state(self) -> BreakerState:
        return self.breaker.state

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send one request; return the response for 2xx, 304 and 401/403, raise an upstream error otherwise.

        401/403 are returned so that adapters with expiring tokens can refresh and retry; 304 Not
        Modified (which only a conditional request gets) so that the adapter that sent one keeps
        what it has.
        `idempotent` says whether the call may be retried: by default only GET, HEAD and OPTIONS
        are; pass True for a POST that only reads (a search, a quote), never for one that writes.
        """
        method = method.upper()
        url = self._url(path)
        hdrs = dict(headers) if headers else {}
        content = None
        if json is not None:
            content = orjson.dumps(json)
            hdrs["content-type"] = "application/json"
        kwargs: dict[str, Any] = {"params": params, "content": content, "data": data, "headers": hdrs}
        if auth is not None:
            kwargs["auth"] = auth
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        observer = self.observer
        if observer is None:
            return await self._call(method, path, url, kwargs, idempotent)
        started = observer.call_started(method, path, hdrs)
        try:
            response = await self._call(method, path, url, kwargs, idempotent)
        except UpstreamError as exc:
            observer.call_ended(started, failure_kind(exc), self.breaker.state)
            raise
        except BaseException:
            observer.call_ended(started, "cancelled", self.breaker.state)
            raise
        observer.call_ended(started, "ok", self.breaker.state)
        return response

    async def _call(self, method: str, path: str, url: httpx.URL, kwargs: dict[str, Any],
                    idempotent: bool) -> httpx.Response:
        counters = self.counters
        counters.calls += 1
        try:
            probe = self.breaker.admit()
        except CircuitOpen:
            counters.failures["circuit_open"] += 1
            raise
        call = _Call(self, method, path, url, kwargs, asyncio.get_running_loop().time() + self.timeout_s, probe)
        deadline = asyncio.timeout_at(call.deadline)
        try:
            try:
                async with deadline:
                    try:
                        response = await self._attempt(call)
                    except UpstreamError as exc:
                        if not (idempotent and self.retries and probe is None and _retryable(exc)):
                            raise
                        response = await self._retry(call, exc)
            except TimeoutError:
                if not deadline.expired():
                    raise
                raise self._deadline_error(call) from None
        except UpstreamError as exc:
            self._settle_failure(call, exc)
            raise
        except BaseException:  # cancelled: the call tells nothing about the system
            self.breaker.release(probe)
            raise
        self.breaker.success(probe)
        return response

    def _url(self, path: str) -> httpx.URL:
        """The absolute URL for `path`, merged with the base URL the way httpx does, once per path."""
        url = self._urls.get(path)
        if url is None:
            if "?" in path:  # a next-page link and the like: one of a kind, not worth keeping
                return self._client.build_request("GET", path).url
            if len(self._urls) >= URL_CACHE_SIZE:
                self._urls.clear()
            url = self._urls[path] = self._client.build_request("GET", path).url
        return url

    async def _retry(self, call: _Call, first: UpstreamError) -> httpx.Response:
        """Retries after a first attempt that failed with `first`, all decided by tenacity.

        The first attempt runs outside tenacity (whose bookkeeping costs more CPU than the rest
        of the hop together); tenacity starts by replaying its outcome, then waits, retries and
        stops by the policy at the top of this module.
        """
        replay: list[UpstreamError] = [first]

        async def attempt(call: _Call) -> httpx.Response:  # `call` for the stop strategy, in retry_state.args
            if replay:
                raise replay.pop()
            if not self.breaker.allows_more_attempts(call.probe):  # the circuit opened while we waited
                assert call.last_error is not None
                raise call.last_error
            return await self._attempt(call)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retries + 1) | _DEADLINE_STOP,
            wait=_WAIT,
            retry=_RETRY,
            before_sleep=self._count_retry,
            reraise=True,
        )
        return await retrying(attempt, call)

    async def _attempt(self, call: _Call) -> httpx.Response:
        limit = self.limit
        try:
            await limit.acquire(call.deadline)
        except OutboundThrottled:
            if call.last_error is not None:  # a retry the rate limit cannot fit: the real failure is the last one
                raise call.last_error from None
            raise
        try:
            return await self._send(call)
        except UpstreamError as exc:
            call.last_error = exc
            raise
        finally:
            limit.release()

    async def _send(self, call: _Call) -> httpx.Response:
        method, path = call.method, call.path
        counters = self.counters
        counters.requests += 1
        call.sent += 1
        call.on_wire = True
        started = time.perf_counter()
        try:
            response = await self._client.request(method, call.url, **call.kwargs)
        except _TRANSPORT_ERRORS as exc:
            counters.observe((time.perf_counter() - started) * 1000)
            raise self._transport_error(exc, method, path) from exc
        finally:
            call.on_wire = False
            if self.observer is not None:
                self.observer.attempt(time.perf_counter() - started)
        counters.observe((time.perf_counter() - started) * 1000)
        status = response.status_code
        if status < 300 or status in (304, 401, 403):
            return response
        retry_after_s = retry_after_seconds(response.headers.get("retry-after")) if status in (429, 503) else None
        if status in UNAVAILABLE_STATUSES:
            raise UpstreamUnavailable(self.system_id, f"the system answered {status} to {method} {path}",
                                      retry_after_s=retry_after_s)
        if status >= 500:
            raise UpstreamError(self.system_id, f"the system failed with {status} on {method} {path}")
        if status == 429:
            raise UpstreamRejected(self.system_id, f"the system rate-limited {method} {path} (429)", status,
                                   retry_after_s=retry_after_s)
        raise UpstreamRejected(self.system_id, f"the system refused {method} {path} with {status}", status,
                               response.content)

    def _transport_error(self, exc: BaseException, method: str, path: str) -> UpstreamError:
        """One upstream error for whatever the transport raised (httpx's, or aiohttp's under it)."""
        # httpx_aiohttp maps aiohttp's errors coarsely (a refused connection becomes a
        # ConnectTimeout): judge by aiohttp's own error when there is one.
        root = exc.__cause__ if isinstance(exc.__cause__, aiohttp.ClientError) else exc
        timeout = connect_phase = False
        if isinstance(root, aiohttp.ClientError):
            timeout = isinstance(root, aiohttp.ServerTimeoutError)
            connect_phase = isinstance(root, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError)
            unavailable = isinstance(root, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError)
            unavailable = unavailable or isinstance(root, aiohttp.ClientResponseError)  # unparsable answer
        else:
            timeout = isinstance(root, httpx.TimeoutException)
            connect_phase = isinstance(root, httpx.ConnectTimeout | httpx.PoolTimeout | httpx.ConnectError)
            unavailable = isinstance(root, httpx.TransportError)
        if timeout:
            return UpstreamTimeout(self.system_id, f"no answer to {method} {path} in time", connect_phase=connect_phase)
        if unavailable:
            return UpstreamUnavailable(self.system_id, f"cannot reach the system ({type(root).__name__})")
        return UpstreamError(self.system_id, f"unusable answer to {method} {path} ({type(root).__name__})")

    def _deadline_error(self, call: _Call) -> UpstreamError:
        """The total deadline passed: a timeout if it cut a request short, else the last failure."""
        if call.on_wire or call.last_error is None:
            if not call.sent:
                self.counters.failures["queue_timeout"] += 1
                return SlotTimeout(
                    self.system_id, f"no free slot toward the system for {call.method} {call.path} in time"
                )
            return UpstreamTimeout(
                self.system_id, f"no answer to {call.method} {call.path} within {self.timeout_s:g} s"
            )
        return call.last_error

    def _settle_failure(self, call: _Call, exc: UpstreamError) -> None:
        """Count a failed call, and tell the breaker what it says about the system."""
        counters, breaker, probe = self.counters, self.breaker, call.probe
        if isinstance(exc, SlotTimeout):
            breaker.release(probe)  # counted already: nothing went on the wire
            return
        if isinstance(exc, OutboundThrottled):
            counters.failures["throttled"] += 1
            breaker.release(probe)
        elif isinstance(exc, UpstreamRejected):
            counters.failures["rejected"] += 1
            if exc.status == 429:
                breaker.release(probe)  # up, but asking us to slow down: neither healthy nor failed
            else:
                breaker.success(probe)  # the system answered: it is up
        else:
            counters.failures[failure_kind(exc)] += 1
            breaker.failure(probe, f"{exc.code}: {exc.detail}")

    def _count_retry(self, retry_state: RetryCallState) -> None:
        self.counters.retries += 1
        if self.observer is not None:
            self.observer.retry()

    @property
    def metrics(self) -> dict[str, Any]:
        """Countable figures for this system: calls, wire requests, retries, failures, breaker, latency."""
        c = self.counters
        return {
            "system_id": self.system_id,
            "calls": c.calls,
            "requests": c.requests,
            "retries": c.retries,
            "failures": dict(c.failures),
            "breaker": self.breaker.snapshot(),
            "latency_ms": {
                "sum": round(c.latency_ms_sum, 3),
                "count": c.latency_count,
                "max": round(c.latency_ms_max, 3),
                "avg": round(c.latency_ms_sum / c.latency_count, 3) if c.latency_count else None,
            },
            "in_flight": self.limit.in_flight,
            "peak_in_flight": self.limit.peak_in_flight,
            "throttled": self.limit.throttled,
            "rate_wait_s": round(self.limit.rate_wait_s, 3),
        }

    def json(self, response: httpx.Response) -> Any:
        """The response body as JSON, or an upstream error naming what was wrong."""
        if response.status_code in (401, 403):
            raise UpstreamError(self.system_id, f"the system rejected our credentials ({response.status_code})")
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(self.system_id, "the system answered with malformed JSON") from exc

    async def aclose(self) -> None:
        await self._client.aclose()
