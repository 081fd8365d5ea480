"""`parkgate clients …` and `parkgate audit`: the admin path for an admin at a terminal.

They act on the store the configuration names (Redis for a deployment) through the same
`AdminService` as the GraphQL admin operations, so every change lands in the same audit log.
Output is JSON, for people and scripts alike. API keys appear once, in the output of
`create` and `rotate`.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer

from gateway.admin import AdminError, AdminService, IssuedKey
from gateway.auth.keys import Environment
from gateway.errors import STORE_ERRORS

T = TypeVar("T")

clients_app = typer.Typer(no_args_is_help=True, help="Create, list, change, rotate and revoke clients.")

#: `--config FILE`, which every command takes
ConfigFile = Annotated[Path, typer.Option("--config", "-c", help="The gateway's YAML configuration (it names the store).")]
#: the client a command acts on
ClientRef = Annotated[str, typer.Argument(help="Client id or name.")]


def emit(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def run_admin(config_path: Path, action: Callable[[AdminService], Awaitable[T]]) -> T:
    from gateway.auth.changes import build_client_changes
    from gateway.auth.redis_store import RedisClientStore
    from gateway.config import ConfigError, load_config
    from gateway.redis_layout import migrate
    from gateway.runtime import build_store

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise fail(f"configuration is not usable: {exc}", 2) from None
    if config.store.backend != "redis" or not config.auth.key_pepper:
        raise fail("the configuration keeps clients in memory, inside the running gateway: "
                   "use its GraphQL admin operations, or configure `store: {backend: redis}`", 2)
    pepper = config.auth.key_pepper.encode()

    async def go() -> T:
        store = build_store(config)
        client_changes = build_client_changes(config)  # the running replicas hear what changed
        try:
            await store.ping()
            if isinstance(store, RedisClientStore):  # a store of before the hash tags: today's names first
                await migrate(store.redis, config.store.prefix)
            admin = AdminService(store, pepper,
                                 known_facilities=config.facilities, plans=config.plans, client_changes=client_changes)
            return await action(admin)
        finally:
            await client_changes.aclose()
            await store.aclose()

    try:
        return asyncio.run(go())
    except AdminError as exc:
        raise fail(f"{exc.code}: {exc.message}") from None
    except STORE_ERRORS + (OSError,) as exc:  # OSError: the socket itself (ConnectionError among them)
        raise fail(f"cannot reach the client store: {exc}", 3) from None


def actor() -> str:
    return f"cli:{getpass.getuser()}"


def issued(result: IssuedKey) -> dict[str, Any]:
    out = {"client": result.client.to_dict(), "key": result.key, "key_id": result.key_id}
    if result.previous_key_expires_at is not None:
        out["previous_keys_expire_at"] = result.previous_key_expires_at.isoformat()
    return out


async def resolve(admin: AdminService, id_or_name: str) -> str:
    client = await admin.store.client(id_or_name) or await admin.store.client_by_name(id_or_name)
    if client is None:
        raise AdminError("NOT_FOUND", f"no client {id_or_name!r}")
    return client.id


@clients_app.command("create")
def create(
    *,  # keyword-only, so that the options are listed in this order, required ones among the others
    config: ConfigFile,
    name: Annotated[str, typer.Option(help="Unique name.")],
    env: Annotated[Environment, typer.Option("--env", help="test or live: where its keys work.")] = Environment.TEST,
    scope: Annotated[list[str], typer.Option("--scope", help="A scope to grant; repeat for more.")],
    facility: Annotated[list[str] | None, typer.Option("--facility", help="A facility it may see; repeat; omit for all.")] = None,
    plan: Annotated[str, typer.Option(help="Quota plan.")] = "standard",
    contact: Annotated[str | None, typer.Option(help="Who to call about it.")] = None,
    notes: Annotated[str | None, typer.Option(help="Free-form notes.")] = None,
) -> None:
    """Create a client and print its API key (shown this once)."""
    result = run_admin(config, lambda admin: admin.create_client(
        actor(), name=name, environment=env, scopes=scope, facilities=facility or None, plan=plan,
        contact=contact, notes=notes))
    emit(issued(result))


@clients_app.command("list")
def list_clients(config: ConfigFile) -> None:
    """Every client, oldest first."""
    emit([c.to_dict() for c in run_admin(config, lambda admin: admin.store.clients())])


@clients_app.command("show")
def show(config: ConfigFile, client: ClientRef) -> None:
    """One client, with its keys' ids and validity (never the keys)."""

    async def action(admin: AdminService) -> dict[str, Any]:
        client_id = await resolve(admin, client)
        found = await admin.store.client(client_id)
        keys = await admin.store.keys_of(client_id)
        assert found is not None
        return {**found.to_dict(), "keys": [
            {"key_id": k.key_id, "created_at": k.created_at.isoformat(),
             "expires_at": k.expires_at.isoformat() if k.expires_at else None} for k in keys]}

    emit(run_admin(config, action))


@clients_app.command("update")
def update(
    config: ConfigFile,
    client: ClientRef,
    scope: Annotated[list[str] | None, typer.Option("--scope", help="The new set of scopes; repeat.")] = None,
    facility: Annotated[list[str] | None, typer.Option("--facility", help="The new set of facilities; repeat.")] = None,
    all_facilities: Annotated[bool, typer.Option("--all-facilities", help="Let it see every facility.")] = False,
    plan: Annotated[str | None, typer.Option(help="The new quota plan.")] = None,
    override: Annotated[list[str] | None, typer.Option(
        "--override",
        help="A quota override NAME=VALUE (requests, cost, window_s, max_query_cost, max_subscriptions); repeat.",
    )] = None,
    clear_overrides: Annotated[bool, typer.Option("--clear-overrides", help="Remove every quota override.")] = False,
    contact: Annotated[str | None, typer.Option(help="Contact.")] = None,
    notes: Annotated[str | None, typer.Option(help="Notes.")] = None,
) -> None:
    """Change scopes, facilities, plan, quota overrides, contact or notes; at once on every replica."""
    if facility and all_facilities:
        raise fail("--facility and --all-facilities exclude each other", 2)
    if override and clear_overrides:
        raise fail("--override and --clear-overrides exclude each other", 2)
    changes: dict[str, Any] = {}
    if override:
        changes["quota_overrides"] = parse_overrides(override)
    if clear_overrides:
        changes["quota_overrides"] = {}
    if scope:
        changes["scopes"] = scope
    if facility:
        changes["facilities"] = facility
    if all_facilities:
        changes["facilities"] = None
    for name, value in (("plan", plan), ("contact", contact), ("notes", notes)):
        if value is not None:
            changes[name] = value
    if not changes:
        raise fail("nothing to change: give --scope, --facility, --all-facilities, --plan, --override, "
                   "--clear-overrides, --contact or --notes", 2)

    async def action(admin: AdminService) -> dict[str, Any]:
        return (await admin.update_client(actor(), await resolve(admin, client), **changes)).to_dict()

    emit(run_admin(config, action))


def parse_overrides(items: list[str]) -> dict[str, int]:
    overrides: dict[str, int] = {}
    for item in items:
        name, _, value = item.partition("=")
        if not name or not value.strip().isdigit():
            raise fail(f"--override {item!r}: write NAME=INTEGER, e.g. requests=120", 2)
        overrides[name.strip()] = int(value)
    return overrides


@clients_app.command("usage")
def usage(config: ConfigFile, client: ClientRef) -> None:
    """The client's quota (plan after overrides) and its use of the current window."""
    from gateway.config import load_config
    from gateway.quotas import Plan, QuotaEnforcer, effective_plan

    settings = load_config(config)
    plans = Plan.all_from_config(settings)

    async def action(admin: AdminService) -> dict[str, Any]:
        found = await admin.store.client(await resolve(admin, client))
        assert found is not None
        plan = effective_plan(plans.get(found.plan) or plans["standard"], found.quota_overrides)
        quotas = QuotaEnforcer.from_config(settings)
        try:
            used = await quotas.usage(found.id, plan)
        finally:
            await quotas.aclose()
        return {"client_id": found.id, "name": found.name, "plan": vars(plan), "overrides": found.quota_overrides,
                "window": {"requests": used.requests, "cost": used.cost, "refusals": used.refusals,
                           "started_at": used.window_started_at.isoformat() if used.window_started_at else None,
                           "seconds": used.window_s}}

    emit(run_admin(config, action))


def plans(config: ConfigFile) -> None:
    """The configured quota plans (edit them in the configuration file)."""
    from gateway.config import ConfigError, load_config

    try:
        settings = load_config(config)
    except ConfigError as exc:
        raise fail(f"configuration is not usable: {exc}", 2) from None
    emit({name: plan.model_dump() for name, plan in settings.plans.items()})


@clients_app.command("rotate")
def rotate(
    config: ConfigFile,
    client: ClientRef,
    grace_seconds: Annotated[int | None, typer.Option(
        help="How long the old keys keep working (default: auth.rotation_grace_s).")] = None,
) -> None:
    """Issue a new key (printed once); the old ones keep working for the grace period."""
    from gateway.config import load_config

    grace = grace_seconds if grace_seconds is not None else load_config(config).auth.rotation_grace_s

    async def action(admin: AdminService) -> dict[str, Any]:
        return issued(await admin.rotate_key(actor(), await resolve(admin, client), timedelta(seconds=grace)))

    emit(run_admin(config, action))


@clients_app.command("revoke")
def revoke(config: ConfigFile, client: ClientRef) -> None:
    """Revoke now: every key and token of the client stops working on every replica."""

    async def action(admin: AdminService) -> dict[str, Any]:
        return (await admin.revoke(actor(), await resolve(admin, client))).to_dict()

    emit(run_admin(config, action))


def audit(
    config: ConfigFile,
    client: Annotated[str | None, typer.Option("--client", help="Only entries about this client (id).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many entries, newest first.")] = 50,
) -> None:
    """The audit log of admin actions, newest first."""

    async def action(admin: AdminService) -> list[dict[str, Any]]:
        entries = await admin.store.audit()
        return [e.to_dict() for e in entries if client is None or e.client_id == client][:limit]

    emit(run_admin(config, action))
