"""The one YAML file that tells parkgate which vendor systems exist and which garage is which.

    systems:        each vendor system: dialect, base URL, credentials (environment references)
    facilities:     each gateway facility: name, city, time zone, and its id in every system
    occupancy:      how counted and sensed figures are served
    server:         GraphiQL, introspection, request limits

A broken file fails at start with the key and what is wrong with it, never at the first
request. Credentials are never written in the file itself: `${PARCS_TOKEN}` names an
environment variable, resolved at load time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from adapters.base import SystemSpec
from adapters.models import SystemKind
from adapters.registry import DIALECTS
from gateway.config_model import ConfigModel
from gateway.finance.accounts import FinanceConfig

ENV_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and the problem."""


class SystemConfig(ConfigModel):
    dialect: str = Field(description="Wire dialect of the vendor system, e.g. apds, parkline, sensor-grid, lpr, mews.")
    kind: SystemKind | None = Field(None, description="PARCS, GUIDANCE, ENFORCEMENT or HOSPITALITY; implied by the dialect.")
    base_url: str
    credentials: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(5.0, gt=0, le=120)
    connect_timeout_s: float = Field(2.0, gt=0, le=60)
    options: dict[str, Any] = Field(default_factory=dict)
    retries: int = Field(2, ge=0, le=5, description="Extra attempts for idempotent reads (backoff, jitter, Retry-After).")
    max_concurrency: int = Field(16, gt=0, le=1000, description="Calls in flight to this system at once.")
    rate_limit_per_s: float | None = Field(None, gt=0, description="Calls per second the vendor's contract allows.")
    breaker_failures: int = Field(5, gt=0, description="Consecutive failures that open the circuit breaker.")
    breaker_reset_s: float = Field(10.0, gt=0, description="Seconds the breaker stays open before a probe.")
    cache_ttl_s: dict[str, int] = Field(
        default_factory=dict, description="Per resource (occupancy, rates, facilities…): seconds an answer stays fresh."
    )
    max_stale_s: int = Field(3600, ge=0, description="How long a last good answer may be served while the system fails.")

    @field_validator("dialect")
    @classmethod
    def known_dialect(cls, value: str) -> str:
        if value not in DIALECTS:
            raise ValueError(f"unknown dialect {value!r}; known: {', '.join(sorted(DIALECTS))}")
        return value

    @field_validator("base_url")
    @classmethod
    def http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def kind_and_credentials(self) -> SystemConfig:
        dialect = DIALECTS[self.dialect]
        if self.kind is not None and self.kind is not dialect.kind:
            raise ValueError(f"dialect {self.dialect!r} is a {dialect.kind.value} system, not {self.kind.value}")
        missing = [name for name in dialect.required_credentials if not self.credentials.get(name)]
        if missing:
            raise ValueError(f"dialect {self.dialect!r} needs credentials: {', '.join(missing)}")
        return self

    def spec(self, system_id: str) -> SystemSpec:
        return SystemSpec(
            id=system_id,
            kind=DIALECTS[self.dialect].kind,
            dialect=self.dialect,
            base_url=self.base_url,
            credentials=dict(self.credentials),
            timeout_s=self.timeout_s,
            connect_timeout_s=self.connect_timeout_s,
            options=dict(self.options),
            retries=self.retries,
            max_concurrency=self.max_concurrency,
            rate_limit_per_s=self.rate_limit_per_s,
            breaker_failures=self.breaker_failures,
            breaker_reset_s=self.breaker_reset_s,
        )


class Location(ConfigModel):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class LevelConfig(ConfigModel):
    name: str
    kind: Literal["LEVEL", "ZONE"] = "LEVEL"
    capacity: int | None = Field(None, ge=0)
    systems: dict[str, str] = Field(default_factory=dict, description="system id -> the level's id there")


class FacilityConfig(ConfigModel):
    name: str = Field(min_length=1)
    city: str | None = None
    time_zone: str
    location: Location | None = None
    systems: dict[str, str] = Field(description="system id -> the facility's id in that system")
    levels: dict[str, LevelConfig] = Field(default_factory=dict)

    @field_validator("time_zone")
    @classmethod
    def iana_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a known IANA time zone (e.g. Europe/Berlin)") from None
        return value


class OccupancyConfig(ConfigModel):
    prefer: Literal["SENSED", "COUNTED"] = Field(
        "SENSED", description="Which figure to serve when both are live: bay sensors count cars, gate counters drift."
    )
    live_seconds: int = Field(300, gt=0, description="A figure observed longer ago than this is STALE.")
    history_retention_s: int = Field(
        48 * 3600, gt=0, description="How long `occupancyHistory` keeps each figure (memory, or Redis when the store is).")
    history_max_samples: int = Field(
        20_000, gt=0, description="At most this many figures kept per facility for `occupancyHistory`, the oldest dropped.")


class ServerConfig(ConfigModel):
    graphiql: bool = True
    #: the browser pages: the occupancy board at /board and the admin console at /admin
    pages: bool = True
    introspection: bool = True
    #: serve the schema as a Federation v2 subgraph (`_service`, `_entities`, `@key`…), for a router in front
    subgraph: bool = False
    #: show fields' scopes to the router as @requiresScopes (off for routers that cannot load it: @apollo/gateway)
    subgraph_scopes: bool = True
    max_body_bytes: int = Field(1_048_576, gt=0)


class PlanConfig(ConfigModel):
    """A quota plan: what a client may spend per window. Clients name a plan; admins override per client."""

    requests: int = Field(gt=0, description="Requests per window.")
    cost: int = Field(gt=0, description="Query cost points per window.")
    window_s: int = Field(60, gt=0, le=86_400, description="Length of the window in seconds.")
    max_query_cost: int = Field(gt=0, description="Ceiling for one query's estimated cost.")
    max_subscriptions: int = Field(20, ge=0, description="Subscriptions open at once.")


DEFAULT_PLANS: dict[str, PlanConfig] = {
    "standard": PlanConfig(requests=600, cost=60_000, max_query_cost=5_000, max_subscriptions=20),
    "partner": PlanConfig(requests=3_000, cost=300_000, max_query_cost=10_000, max_subscriptions=100),
    # Deliberately small, so that partners can watch throttling happen in the sandbox.
    "throttled": PlanConfig(requests=30, cost=1_500, max_query_cost=500, max_subscriptions=2),
}


class LimitsConfig(ConfigModel):
    """Per-request limits that hold for every client, whatever its plan."""

    max_depth: int = Field(12, gt=0)
    max_introspection_depth: int = Field(
        15, gt=0, description="Depth of `__schema` / `__type`, counted like `max_depth`: the standard introspection "
                              "query (graphql-js 16, graphql-core 3.3: GraphiQL, Apollo, codegen) is 15 deep.")
    max_aliases: int = Field(30, ge=0)
    max_root_fields: int = Field(10, gt=0)
    max_selections: int = Field(2_000, gt=0, description="Selections a document may expand to once its fragments "
                                "are spread, counted before validation (gateway/document_shape.py).")
    max_batch: int = Field(10, gt=0, description="Operations in one batched request (a JSON array).")
    operation_timeout_s: float = Field(
        10.0, gt=0, le=300, description="Seconds an operation's vendor reads may take together (gateway/deadline.py): "
                                        "a read still waiting then answers UPSTREAM_TIMEOUT on the fields that need it.")


DEFAULT_TTLS: dict[str, int] = {
    # How long a vendor's answer stays fresh, by resource: occupancy moves by the second, tariffs
    # change by the season, facility descriptions hardly ever.
    "occupancy": 10,
    "citations": 30,
    "stays": 60,
    "quotes": 60,
    "rates": 3600,
    "facilities": 86_400,
    "zones": 86_400,
    "properties": 86_400,
}


class CacheConfig(ConfigModel):
    backend: Literal["memory", "redis", "none"] | None = Field(
        None, description="Where vendor answers are cached; default: Redis when the store is Redis, else memory."
    )
    ttl_s: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_TTLS), description="Fresh seconds per resource.")
    lock_ms: int = Field(3000, gt=0, description="Single flight across replicas: how long one replica may hold a refresh.")


class QuotaConfig(ConfigModel):
    on_redis_error: Literal["open", "closed"] = Field(
        "open",
        description="open: a local per-replica limiter takes over while Redis is unreachable (logged); closed: refuse with 503.",
    )


class AuthConfig(ConfigModel):
    enabled: bool = Field(True, description="Turn off only for a private deployment: every request then sees everything.")
    key_pepper: str | None = Field(
        None, description="Secret for the keyed hash of API keys (${VARIABLE}); required with the Redis store."
    )
    token_lifetime_s: int = Field(900, ge=60, le=86_400)
    rotation_grace_s: int = Field(86_400, ge=0, le=30 * 86_400, description="How long a rotated-out key keeps working.")


class StoreConfig(ConfigModel):
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str | None = Field(
        None, description="redis://host:port/db, redis+cluster://host:port[,host:port…] or "
                          "redis+sentinel://host:port[,host:port…]/service[/db] (docs/deployment.md)."
    )
    prefix: str = Field("parkgate:", description="Starts every key; without { or }: the gateway places its own hash tags.")

    @model_validator(mode="after")
    def redis_needs_url(self) -> StoreConfig:
        if self.backend == "redis" and not self.redis_url:
            raise ValueError("the redis backend needs `redis_url` (e.g. redis://127.0.0.1:6379/0)")
        if self.redis_url:
            from gateway.redis_connect import parse

            parse(self.redis_url)  # one server, a cluster or a Sentinel service: a bad form fails here
        if "{" in self.prefix or "}" in self.prefix:
            raise ValueError("`store.prefix` must not contain { or }: the gateway places the hash tags of its keys itself")
        return self


class WebhooksConfig(ConfigModel):
    allow_networks: list[str] = Field(
        default_factory=list,
        description="Networks outbound webhooks may reach although private, loopback or reserved (CIDR, e.g. 10.1.0.0/16).",
    )
    https_only: bool = Field(True, description="Refuse plain http:// webhook endpoints.")

    @model_validator(mode="after")
    def networks_parse(self) -> WebhooksConfig:
        import ipaddress

        for network in self.allow_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"webhooks.allow_networks: {network!r} is not a network (CIDR)") from None
        return self


class EventsConfig(ConfigModel):
    """The event path's background work: the Redis bus's replica identity and the pollers."""

    replica_id: str | None = Field(
        None, description="This replica's name on the Redis bus (where it resumes after a restart); default: host name[:port]."
    )
    poll_interval_s: float = Field(5, gt=0, description="How often a poll-only system (no webhooks) is read and diffed.")
    lease_s: float = Field(15, gt=0, description="With Redis: how long a dead replica's poller lease blocks a takeover.")
    polling: bool | None = Field(
        None, description="Run the pollers for systems without webhooks (default on; the test bed turns them off)."
    )

    @model_validator(mode="after")
    def lease_outlives_a_cycle(self) -> EventsConfig:
        if self.lease_s <= self.poll_interval_s:
            raise ValueError("events.lease_s must be longer than events.poll_interval_s (the holder renews it each cycle)")
        return self


class MetricsConfig(ConfigModel):
    """Prometheus exposition (gateway/observability/metrics.py; docs/observability.md)."""

    enabled: bool = Field(True, description="Count requests, vendor calls, caches and events for Prometheus.")
    access: Literal["open", "scope", "port"] = Field(
        "open", description="open: GET /metrics on the gateway's port for anyone; scope: only a client holding "
                            "`scope`; port: only on a private listener (`host`:`port`), not on the gateway's port.")
    scope: str = Field("admin", description="With access: scope, the scope a client needs to read /metrics.")
    host: str = Field("127.0.0.1", description="With access: port, where the private listener binds.")
    port: int = Field(9464, ge=0, le=65_535, description="With access: port, its port (9464: OpenTelemetry's "
                                                         "Prometheus default).")
    max_operation_names: int = Field(
        100, ge=0, le=10_000, description="Distinct GraphQL operation names a process labels its figures with; "
                                          "later names count under `other` (labels stay bounded).")

    @field_validator("scope")
    @classmethod
    def known_scope(cls, value: str) -> str:
        from gateway.auth.scopes import Scope

        if value not in {scope.value for scope in Scope}:
            raise ValueError(f"unknown scope {value!r}")
        return value


class TracingConfig(ConfigModel):
    """OpenTelemetry traces (gateway/observability/tracing.py). Off by default."""

    enabled: bool = Field(False, description="Make spans and honour/propagate W3C `traceparent`.")
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces); without it, spans are "
                          "exported only when the standard OTEL_EXPORTER_OTLP_* variables name a collector.")
    sample_ratio: float = Field(0.01, ge=0, le=1, description="Share of new traces sampled; a caller's sampled "
                                                              "`traceparent` is always followed (parent-based).")
    service_name: str = Field("parkgate", min_length=1, description="service.name of the spans.")


class LoggingConfig(ConfigModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="INFO: one line per request and what an operator must know; routine work is DEBUG.")
    format: Literal["json", "text"] = Field("json", description="json for log shippers; text for people.")


class ObservabilityConfig(ConfigModel):
    metrics: MetricsConfig = MetricsConfig()
    tracing: TracingConfig = TracingConfig()
    logging: LoggingConfig = LoggingConfig()


class GatewayConfig(ConfigModel):
    environment: Literal["test", "live"] = Field(
        "live", description="Keys of the other environment are refused: a test key never reaches live systems."
    )
    systems: dict[str, SystemConfig]
    facilities: dict[str, FacilityConfig]
    occupancy: OccupancyConfig = OccupancyConfig()
    server: ServerConfig = ServerConfig()
    auth: AuthConfig = AuthConfig()
    store: StoreConfig = StoreConfig()
    plans: dict[str, PlanConfig] = Field(default_factory=lambda: dict(DEFAULT_PLANS))
    limits: LimitsConfig = LimitsConfig()
    quotas: QuotaConfig = QuotaConfig()
    cache: CacheConfig = CacheConfig()
    events: EventsConfig = EventsConfig()
    webhooks: WebhooksConfig = WebhooksConfig()
    finance: FinanceConfig = Field(FinanceConfig(), description="Chart of accounts for journal exports (gateway/finance).")
    observability: ObservabilityConfig = ObservabilityConfig()

    @model_validator(mode="after")
    def has_a_standard_plan(self) -> GatewayConfig:
        if "standard" not in self.plans:
            raise ValueError("plans: a plan named `standard` is needed (new clients get it unless told otherwise)")
        return self

    @model_validator(mode="after")
    def shared_store_needs_a_pepper(self) -> GatewayConfig:
        if self.store.backend == "redis" and not self.auth.key_pepper:
            raise ValueError("auth.key_pepper: required with the redis store (keys must verify on every replica)")
        return self

    @field_validator("systems", "facilities")
    @classmethod
    def ids_are_slugs(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not re.match(ID_PATTERN, key):
                raise ValueError(f"id {key!r} must be lower-case letters, digits and dashes")
        return value

    @model_validator(mode="after")
    def references_resolve(self) -> GatewayConfig:
        problems: list[str] = []
        for fid, facility in self.facilities.items():
            kinds: dict[SystemKind, str] = {}
            for system_id in facility.systems:
                system = self.systems.get(system_id)
                if system is None:
                    problems.append(f"facilities.{fid}.systems.{system_id}: no such system in `systems`")
                    continue
                kind = DIALECTS[system.dialect].kind
                if kind in kinds:
                    problems.append(
                        f"facilities.{fid}.systems.{system_id}: the facility already has a {kind.value} system ({kinds[kind]})"
                    )
                kinds[kind] = system_id
            for lid, level in facility.levels.items():
                for system_id in level.systems:
                    if system_id not in facility.systems:
                        problems.append(
                            f"facilities.{fid}.levels.{lid}.systems.{system_id}: the facility has no id in that system"
                        )
        for fid in self.finance.unknown_facilities(set(self.facilities)):
            problems.append(f"finance.facilities.{fid}: no such facility in `facilities`")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def specs(self) -> list[SystemSpec]:
        return [system.spec(system_id) for system_id, system in self.systems.items()]


REFERENCE_ANYWHERE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def is_secret(path: tuple[str, ...]) -> bool:
    """Secrets must be environment references, never written in the file."""
    return (len(path) == 4 and path[0] == "systems" and path[2] == "credentials") or path == ("auth", "key_pepper")


class Unresolved(NamedTuple):
    """A value that could not be resolved: where it is, as written, and what is wrong."""

    path: tuple[str, ...]
    written: str
    message: str


def _resolve(raw: Any, environ: Mapping[str, str], path: tuple[str, ...]) -> tuple[Any, list[Unresolved]]:
    """Substitute `${VAR}` everywhere in the document: the document, and each problem with where it
    is. A value with a problem stays as written."""
    if isinstance(raw, dict):
        problems: list[Unresolved] = []
        resolved = {}
        for key, value in raw.items():
            resolved[key], found = _resolve(value, environ, (*path, str(key)))
            problems += found
        return resolved, problems
    if isinstance(raw, list):
        items = [_resolve(value, environ, (*path, str(i))) for i, value in enumerate(raw)]
        return [item for item, _ in items], [p for _, found in items for p in found]
    if not isinstance(raw, str):
        return raw, []
    where = ".".join(path)
    if is_secret(path) and not ENV_REFERENCE.match(raw):
        return raw, [Unresolved(path, raw, f"{where}: write a reference to an environment variable like ${{PARCS_TOKEN}}, "
                                           "not the secret")]
    missing = [name for name in REFERENCE_ANYWHERE.findall(raw) if not environ.get(name)]
    if missing:
        return raw, [Unresolved(path, raw, f"{where}: environment variable {missing[0]} is not set")]
    return REFERENCE_ANYWHERE.sub(lambda m: environ[m.group(1)], raw), []


def validation_problems(error: ValidationError) -> list[tuple[tuple[str, ...], str]]:
    """Each of pydantic's errors as (key path, "key.path: problem")."""
    problems = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        loc = tuple(str(part) for part in item["loc"])
        where = ".".join(loc)
        problems.append((loc, f"{where}: {message}" if where else message))  # cross-key checks name their keys themselves
    return problems


def parse_config(raw: Any, *, source: str = "config", environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """The configuration, or one ConfigError that lists every problem at once: environment
    variables that are not set and secrets written into the file, then whatever is wrong with
    the values (a misspelt time zone is reported before the variables are all set, not after).

    A value that could not be resolved is validated as written (`${VAR}`); the complaints that
    only echo it (`timeout_s: ${TIMEOUT}` is not a number) are left out: its own line said why.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with `systems` and `facilities`")
    raw, unresolved = _resolve(raw, os.environ if environ is None else environ, ())
    problems = [u.message for u in unresolved]

    def echoes_unresolved(loc: tuple[str, ...], problem: str) -> bool:
        return any(loc[:len(u.path)] == u.path or repr(u.written) in problem for u in unresolved)

    try:
        config = GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        problems += [problem for loc, problem in validation_problems(exc) if not echoes_unresolved(loc, problem)]
    if problems:
        raise ConfigError(f"{source}:\n  " + "\n  ".join(problems))
    return config


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    return parse_config(raw, source=str(path), environ=environ)
