"""The one way the gateway opens a connection to its Redis, whatever shape that Redis has.

`store.redis_url` says which shape, by its scheme (the same forms the `limits` library reads):

    redis://[user:password@]host:port[/db]              one server (rediss:// with TLS; unix:///path?db=N)
    redis+cluster://[user:password@]host:port[,host:port…]
                                                        a Redis Cluster: any of its nodes (several, so that
                                                        one being down at start does not matter); the client
                                                        learns the rest and follows slots as they move
    redis+sentinel://[user:password@]host:port[,host:port…]/service[/db]
                                                        the master that the Sentinels know as `service`; the
                                                        client asks the Sentinels again after a failover

`rediss+cluster://` and `rediss+sentinel://` are the same over TLS. A user and password in the URL
are the data nodes' (and, for Sentinel, the Sentinels' too: `?sentinel_password=` sets theirs apart).

`connect(url, …)` returns redis-py's asyncio client for that shape: `Redis` (one server, or a
Sentinel-managed master) or `RedisCluster`. Every Redis-backed part of the gateway opens its
connections here (the client store, quotas, idempotency, the cache, the bus, the inbox, pollers,
subscription slots, outbound webhooks, client-change notices), so they all speak to the same
deployment the same way.

What works how on a cluster: every multi-key command, script and transaction of the gateway keeps
its keys in one hash slot (a `{tag}` in the key, docs/deployment.md lists them), so it runs on one
node; a blocking stream read (XREAD/XREADGROUP BLOCK) goes to its stream's node; SCAN (clearing the
cache) walks every master. Failover: a command that fails on a connection error is retried on a
new connection (a Sentinel-managed one asks the Sentinels for the master again; a cluster client
refreshes its slot map), a few times with a short backoff, and then the error goes up to become
503 GATEWAY_UNAVAILABLE (gateway/errors.py) while no master answers.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import ConnectionError, RedisClusterException, RedisError, TimeoutError

Shape = Literal["server", "cluster", "sentinel"]
#: what a client raises when its Redis does not answer as it should: redis-py's errors, and a cluster's
#: (RedisClusterUnreachableError, raised while every node is away, is not a RedisError)
REDIS_FAILURES: tuple[type[Exception], ...] = (RedisError, RedisClusterException)
#: what `connect` returns
RedisClient = Redis | RedisCluster

#: connections per node when the caller sets no bound: what redis-py's pool for one server allows. Its
#: cluster client's own default (100 per node) refuses the 101st command in flight at once
#: (MaxConnectionsError), so a burst of one busy client would fail where one server serves it.
UNBOUNDED = 2**31
DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379
#: attempts after the first on a connection error: enough to ride out a Sentinel failover's switch
#: (the new master is known within a second of a coordinated failover), short enough for a quick 503
RETRIES = 3
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 0.5

_SCHEMES: dict[str, tuple[Shape, bool]] = {
    "redis": ("server", False), "rediss": ("server", True), "unix": ("server", False),
    "redis+cluster": ("cluster", False), "rediss+cluster": ("cluster", True),
    "redis+sentinel": ("sentinel", False), "rediss+sentinel": ("sentinel", True),
}
FORMS = ("redis://host:port/db, rediss://…, unix:///path, redis+cluster://host:port[,host:port…], "
         "redis+sentinel://host:port[,host:port…]/service[/db]")


@dataclass(frozen=True)
class Target:
    """A parsed `store.redis_url`."""

    shape: Shape
    url: str
    tls: bool = False
    #: cluster seed nodes, or the Sentinels
    nodes: tuple[tuple[str, int], ...] = ()
    #: the Sentinels' name for the master
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def parse(url: str) -> Target:
    """The deployment a URL names, or ValueError saying what is wrong with it (checked with the config)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise ValueError(f"`store.redis_url` must be one of: {FORMS}")
    shape, tls = _SCHEMES[scheme.lower()]
    if shape == "server":
        return Target("server", url, tls)
    parts = urlsplit("redis://" + rest)  # urlsplit reads user info and the path; the netloc may list several hosts
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":") if userinfo else ("", "", "")
    default_port = DEFAULT_SENTINEL_PORT if shape == "sentinel" else DEFAULT_PORT
    nodes = tuple(_node(h, default_port) for h in hosts.split(",") if h)
    if not nodes:
        raise ValueError(f"`store.redis_url` names no {'node' if shape == 'cluster' else 'Sentinel'}: {FORMS}")
    query = parse_qs(parts.query)
    path = [p for p in parts.path.split("/") if p]
    service, db = "", 0
    if shape == "cluster":
        if path and path != ["0"]:
            raise ValueError("a Redis Cluster has database 0 only: `redis+cluster://host:port[,host:port…]`")
    else:
        if not path or len(path) > 2:
            raise ValueError("`redis+sentinel://host:port[,host:port…]/service[/db]` needs the master's service name")
        service = unquote(path[0])
        try:
            db = int(path[1]) if len(path) == 2 else 0
        except ValueError:
            raise ValueError(f"`store.redis_url`: the database must be a number, not {path[1]!r}") from None
    return Target(shape, url, tls, nodes, service, db, unquote(username) or None, unquote(password) or None,
                  query.get("sentinel_password", [None])[0])


def _node(text: str, default_port: int) -> tuple[str, int]:
    """`host:port`, `host` (the default port) or `[v6 address]:port`."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    try:
        return host, int(port) if port else default_port
    except ValueError:
        raise ValueError(f"`store.redis_url`: {text!r} is not host:port") from None


def shape_of(url: str) -> Shape:
    return parse(url).shape


def retry_policy(retries: int = RETRIES, *, timeouts: bool = True) -> Retry:
    """Retry on connection errors (and on timeouts, unless `timeouts` is False) a few times, quickly."""
    if retries <= 0:
        return Retry(NoBackoff(), 0)
    errors = (ConnectionError, TimeoutError) if timeouts else (ConnectionError,)
    return Retry(ExponentialWithJitterBackoff(base=BACKOFF_BASE_S, cap=BACKOFF_CAP_S), retries, supported_errors=errors)


class SentinelMaster(Redis):
    """The master a Sentinel names; closing it closes the connections to the Sentinels as well."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        manager = getattr(self.connection_pool, "sentinel_manager", None)
        await super().aclose(close_connection_pool)
        if isinstance(manager, Sentinel):
            await manager.aclose()


def connect(url: str, *, timeout_s: float | None, connect_timeout_s: float = 1.0, retries: int = RETRIES,
            retry_timeouts: bool = True, health_check_interval: float = 0, max_connections: int | None = None,
            **options: Any) -> RedisClient:
    """An asyncio client for the deployment `url` names (no connection is made until it is used).

    `timeout_s`: each reply is awaited this long (a blocking read needs its block time on top);
    `retries`: attempts after the first on a connection error, and on a timeout if `retry_timeouts`;
    `max_connections`: past it, redis-py raises MaxConnectionsError (bound the caller's concurrency: gateway/cache.py);
    without it a client opens a connection per command in flight, whatever the shape (`UNBOUNDED`);
    `options` go to the redis-py client as they are (`decode_responses=True`, …).
    """
    target = parse(url)
    common: dict[str, Any] = {
        "socket_timeout": timeout_s, "socket_connect_timeout": connect_timeout_s, "retry": retry_policy(retries, timeouts=retry_timeouts),
        "health_check_interval": health_check_interval, **options,
    }
    if target.shape == "server":
        if max_connections is not None:
            common["max_connections"] = max_connections
        return Redis.from_url(url, **common)
    auth: dict[str, Any] = {"username": target.username, "password": target.password}
    if target.shape == "cluster":
        return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in target.nodes], ssl=target.tls,
                            max_connections=max_connections if max_connections is not None else UNBOUNDED,
                            **auth, **common)
    sentinel_kwargs: dict[str, Any] = {"socket_timeout": connect_timeout_s, "socket_connect_timeout": connect_timeout_s,
                                       "password": target.sentinel_password or target.password, "ssl": target.tls}
    if target.sentinel_password is None and target.username:
        sentinel_kwargs["username"] = target.username
    pool_kwargs: dict[str, Any] = {}
    if max_connections is not None:
        pool_kwargs["max_connections"] = max_connections
    sentinel = Sentinel(list(target.nodes), sentinel_kwargs=sentinel_kwargs, ssl=target.tls, **auth, **common)
    return sentinel.master_for(target.service, redis_class=SentinelMaster, db=target.db, **pool_kwargs)


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)


#: how long a write that must survive a failover waits for its replica's acknowledgement
CONFIRM_MS = 1000


class NotConfirmed(ConnectionError):
    """A write the master could not confirm on a replica in time: a failover may be dropping it
    (the master just lost its replica, or is no longer the master). A store error: answer 503."""


def replicas_to_confirm(url: str) -> int:
    """Replicas that must hold a write of accepted work before it is acknowledged: one behind Sentinel
    (a master promoted in a failover has every write so confirmed; an old master that kept taking
    writes for a moment is found out), none on one server or a cluster (nothing to fail over to, or
    Redis Cluster's own asynchronous replication)."""
    return 1 if parse(url).shape == "sentinel" else 0


async def confirmed(client: Any, replicas: int, add: Any) -> Any:
    """`add(pipe)` queues one write; it runs, then WAIT on the same connection for `replicas`
    replicas. Its reply, or NotConfirmed. With no replica to wait for, `add(client)` runs as it is."""
    if not replicas:
        reply = add(client)
        return await reply if inspect.isawaitable(reply) else reply
    async with client.pipeline(transaction=False) as pipe:
        queued = add(pipe)
        if inspect.isawaitable(queued):  # a registered Script queues itself on a pipeline when awaited
            await queued
        pipe.wait(replicas, CONFIRM_MS)
        results = await pipe.execute()
    if int(results[-1]) < replicas:
        raise NotConfirmed("the write was not confirmed on a replica (a failover?)")
    return results[0]
