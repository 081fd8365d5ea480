"""Everything a running gateway holds for its lifetime, built once from the configuration:
vendor systems, the facility directory, the client store and what works on it (admin,
tokens, authentication), the bus and partners' outbound webhooks. Each service is a plain typed
field; the composition roots (`parkgate serve`, the sandbox) build it and hand it to the app."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from gateway.admin import AdminService
from gateway.auth.authenticate import Authenticator
from gateway.auth.changes import ClientChanges, build_client_changes
from gateway.auth.clients import ClientStore, MemoryClientStore
from gateway.auth.keys import Environment
from gateway.auth.tokens import TokenService
from gateway.cache import Cache, build_cache
from gateway.config import GatewayConfig
from gateway.directory import Directory
from gateway.events.bus import EventBus, MemoryBus
from gateway.events.outbound import OutboundWebhooks
from gateway.idempotency import IdempotencyStore, MemoryIdempotency, RedisIdempotency
from gateway.observability import Observability
from gateway.observability.bus import ObservedBus
from gateway.occupancy_history import MemoryHistory, OccupancyHistory, RedisHistory
from gateway.quotas import Plan, QuotaEnforcer
from gateway.quote_tokens import QuoteTokens
from gateway.systems import Systems
from gateway.usage_log import UsageLog

log = logging.getLogger("parkgate.runtime")


def build_store(config: GatewayConfig) -> ClientStore:
    if config.store.backend == "redis":
        from gateway.auth.redis_store import RedisClientStore

        assert config.store.redis_url is not None
        # Short socket timeouts: an unreachable Redis must turn into a quick 503, not a hung request.
        return RedisClientStore.from_url(config.store.redis_url, prefix=config.store.prefix,
                                         timeout_s=1.0, connect_timeout_s=1.0)
    return MemoryClientStore()


def build_idempotency(config: GatewayConfig) -> IdempotencyStore:
    # With a shared client store there are several replicas: a retry may reach another one.
    if config.store.backend == "redis":
        assert config.store.redis_url is not None
        return RedisIdempotency.from_url(config.store.redis_url, config.store.prefix)
    return MemoryIdempotency()


def build_history(config: GatewayConfig) -> OccupancyHistory:
    """Kept where the store is: in memory, or in Redis so every replica charts the same day."""
    retention, bound = config.occupancy.history_retention_s, config.occupancy.history_max_samples
    if config.store.backend == "redis":
        assert config.store.redis_url is not None
        return RedisHistory.from_url(config.store.redis_url, config.store.prefix, retention, bound)
    return MemoryHistory(retention, bound)


def build_usage_log(config: GatewayConfig) -> UsageLog:
    """Clients' use minute by minute and their 429s, for the admin console: shared in Redis when the store is."""
    if config.store.backend == "redis":
        assert config.store.redis_url is not None
        return UsageLog.from_url(config.store.redis_url, config.store.prefix)
    return UsageLog()


def build_bus(config: GatewayConfig) -> EventBus:
    """Memory by default; Redis Streams when the store is Redis, so that every replica sees every event."""
    if config.store.backend == "redis":
        from gateway.events.redis_bus import RedisStreamBus

        return RedisStreamBus.from_config(config)
    return MemoryBus()


@dataclass
class Runtime:
    config: GatewayConfig
    systems: Systems
    directory: Directory
    store: ClientStore
    admin: AdminService
    tokens: TokenService
    authenticator: Authenticator
    quotas: QuotaEnforcer
    plans: dict[str, Plan]
    #: vendor answers, whole responses and persisted queries (memory, Redis, or None when turned off)
    cache: Cache | None
    #: every DomainEvent, seen by every replica
    bus: EventBus
    #: idempotency keys of writes: first results, kept for retries (shared by replicas on Redis)
    idempotency: IdempotencyStore
    #: signs the quote ids clients book with
    quote_tokens: QuoteTokens
    #: "this client changed" notices from the admin path, heard by every replica (open streams re-check)
    client_changes: ClientChanges
    #: partners' webhook endpoints and deliveries (resolvers register through it; the event path runs its worker)
    outbound: OutboundWebhooks
    #: facilities' occupancy figures over time (the event path records them; `occupancyHistory` reads them)
    history: OccupancyHistory
    #: clients' requests and cost minute by minute, and their 429s (the meter notes them; the admin API reads them)
    usage_log: UsageLog
    #: Prometheus figures and OpenTelemetry traces (gateway/observability/)
    observability: Observability

    @property
    def environment(self) -> Environment:
        return Environment(self.config.environment)

    @classmethod
    def from_config(cls, config: GatewayConfig, store: ClientStore | None = None) -> Runtime:
        store = store or build_store(config)
        if config.auth.key_pepper:
            pepper = config.auth.key_pepper.encode()
        else:
            # In memory only (checked by the config): keys live as long as the process, and so does this.
            pepper = secrets.token_bytes(32)
        if not config.auth.enabled:
            log.warning("authentication is turned off: every request sees every facility with every scope")
        environment = Environment(config.environment)
        tokens = TokenService(store, lifetime_s=config.auth.token_lifetime_s)
        cache = build_cache(config)
        # A shared store is read through a short cache so revocations reach every replica within a second
        # (memory: entries are only kept for the stale-if-error path, which cannot happen there).
        cache_ttl = 0.5 if config.store.backend == "redis" else 0.0
        client_changes = build_client_changes(config)
        observability = Observability.from_config(config)
        bus = ObservedBus(build_bus(config), observability.metrics, observability.tracing)
        return cls(
            config=config,
            systems=Systems.from_config(config, cache=cache, observability=observability),
            directory=Directory(config),
            store=store,
            admin=AdminService(store, pepper, known_facilities=config.facilities, plans=config.plans,
                               client_changes=client_changes),
            tokens=tokens,
            authenticator=Authenticator(store, pepper, environment, tokens, cache_ttl_s=cache_ttl),
            quotas=QuotaEnforcer.from_config(config),
            plans=Plan.all_from_config(config),
            cache=cache,
            bus=bus,
            idempotency=build_idempotency(config),
            quote_tokens=QuoteTokens(pepper),
            client_changes=client_changes,
            outbound=OutboundWebhooks(config, bus, store, observability=observability),
            observability=observability,
            history=build_history(config),
            usage_log=build_usage_log(config),
        )

    async def upgrade_store(self) -> None:
        """Keys a Redis store kept before they had hash tags get today's names (gateway/redis_layout.py);
        once, at the first start on such a store, and at no cost after."""
        from gateway.auth.redis_store import RedisClientStore
        from gateway.redis_layout import migrate

        if isinstance(self.store, RedisClientStore):
            await migrate(self.store.redis, self.config.store.prefix)

    async def aclose(self) -> None:
        await self.systems.aclose()
        await self.store.aclose()
        await self.quotas.aclose()
        await self.idempotency.aclose()
        await self.client_changes.aclose()
        await self.outbound.aclose()
        await self.history.aclose()
        await self.usage_log.aclose()
        self.observability.metrics.batch.flush()  # with several workers: into the shared files, before exit
        if self.observability.tracing is not None:
            self.observability.tracing.shutdown()
