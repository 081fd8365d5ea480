"""The admin path: create, change, rotate and revoke clients, each action in the audit log.

GraphQL admin operations and the `parkgate clients` CLI both come here, so there is one
place where a client changes and one audit trail of who changed it. Read forward:
`AdminService.create_client` → store → `_audit`. A change to an existing client is announced
once stored (`client_changes.publish`, gateway/auth/changes.py): every replica's open subscriptions
of that client check their credentials again at once.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.auth.changes import ClientChanges
from gateway.auth.clients import AuditEntry, Client, ClientStatus, ClientStore, KeyRecord
from gateway.auth.keys import Environment, key_hash, new_key
from gateway.auth.scopes import parse_scopes
from gateway.card_numbers import new_id
from gateway.quotas import check_overrides

DEFAULT_GRACE = timedelta(hours=24)
MAX_GRACE = timedelta(days=30)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
TEXT_LIMIT = 500


class AdminError(Exception):
    """An admin request that cannot be carried out; `code` is from the error catalog."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class IssuedKey:
    """A client and its new key: the only moment the key is ever visible."""

    client: Client
    key: str
    key_id: str
    previous_key_expires_at: datetime | None = None


class AdminService:
    def __init__(self, store: ClientStore, pepper: bytes, known_facilities: Collection[str],
                 plans: Collection[str] = ("standard",), client_changes: ClientChanges | None = None) -> None:
        self.store = store
        self.client_changes = client_changes or ClientChanges()
        self.pepper = pepper
        self.known_facilities = frozenset(known_facilities)
        self.plans = frozenset(plans)

    # --- checks -------------------------------------------------------------------------

    def _scopes(self, scopes: object) -> frozenset[str]:
        try:
            return parse_scopes(scopes)
        except (TypeError, ValueError) as exc:
            raise AdminError("BAD_USER_INPUT", str(exc)) from None

    def _facilities(self, facilities: Collection[str] | None) -> frozenset[str] | None:
        if facilities is None:
            return None
        unknown = sorted(set(facilities) - self.known_facilities)
        if unknown:
            raise AdminError("BAD_USER_INPUT", f"unknown facility {unknown[0]!r}")
        return frozenset(facilities)

    def _plan(self, plan: str) -> str:
        if plan not in self.plans:
            raise AdminError("BAD_USER_INPUT", f"unknown plan {plan!r}; known: {', '.join(sorted(self.plans))}")
        return plan

    @staticmethod
    def _text(name: str, value: str | None) -> str | None:
        if value is not None and len(value) > TEXT_LIMIT:
            raise AdminError("BAD_USER_INPUT", f"{name} is longer than {TEXT_LIMIT} characters")
        return value

    async def _existing(self, client_id: str) -> Client:
        client = await self.store.client(client_id)
        if client is None:
            raise AdminError("NOT_FOUND", f"no client {client_id!r}")
        return client

    # --- actions ------------------------------------------------------------------------

    async def create_client(
        self,
        actor: str,
        *,
        name: str,
        environment: Environment,
        scopes: object,
        facilities: Collection[str] | None = None,
        plan: str = "standard",
        contact: str | None = None,
        notes: str | None = None,
    ) -> IssuedKey:
        if not NAME_PATTERN.match(name):
            raise AdminError("BAD_USER_INPUT", "name must be 1-64 letters, digits, spaces, dots, dashes or underscores")
        if await self.store.client_by_name(name) is not None:
            raise AdminError("CONFLICT", f"a client named {name!r} exists")
        now = datetime.now(UTC)
        client = Client(
            id=new_id("cl"),
            name=name,
            environment=environment,
            scopes=self._scopes(scopes),
            facilities=self._facilities(facilities),
            created_at=now,
            plan=self._plan(plan),
            contact=self._text("contact", contact),
            notes=self._text("notes", notes),
        )
        key = new_key(environment)
        await self.store.save_client(client)
        await self.store.save_key(KeyRecord(key.key_id, client.id, key_hash(self.pepper, key.raw), now))
        await self._audit(actor, "client.create", client.id, None, client, key_id=key.key_id)
        return IssuedKey(client, key.raw, key.key_id)

    async def update_client(self, actor: str, client_id: str, **changes: Any) -> Client:
        before = await self._existing(client_id)
        if before.status is ClientStatus.REVOKED:
            raise AdminError("CONFLICT", "a revoked client cannot be changed")
        clean: dict[str, Any] = {}
        if "scopes" in changes:
            clean["scopes"] = self._scopes(changes.pop("scopes"))
        if "facilities" in changes:
            clean["facilities"] = self._facilities(changes.pop("facilities"))
        if "plan" in changes:
            clean["plan"] = self._plan(changes.pop("plan"))
        for name in ("contact", "notes"):
            if name in changes:
                clean[name] = self._text(name, changes.pop(name))
        if "quota_overrides" in changes:
            try:
                clean["quota_overrides"] = check_overrides(changes.pop("quota_overrides"))
            except ValueError as exc:
                raise AdminError("BAD_USER_INPUT", str(exc)) from None
        if changes:
            raise AdminError("BAD_USER_INPUT", f"cannot change {', '.join(sorted(changes))}")
        after = before.with_changes(**clean)
        await self.store.save_client(after)
        await self.client_changes.publish(client_id)
        await self._audit(actor, "client.update", client_id, before, after)
        return after

    async def rotate_key(self, actor: str, client_id: str, grace: timedelta = DEFAULT_GRACE) -> IssuedKey:
        """A new key; the keys valid until now stay valid for `grace`, then stop."""
        if grace < timedelta(0) or grace > MAX_GRACE:
            raise AdminError("BAD_USER_INPUT", f"the grace period must be between 0 and {MAX_GRACE.days} days")
        before = await self._existing(client_id)
        if before.status is ClientStatus.REVOKED:
            raise AdminError("CONFLICT", "a revoked client cannot get a new key")
        now = datetime.now(UTC)
        ends = now + grace
        for record in await self.store.keys_of(client_id):
            if record.valid_at(now) and (record.expires_at is None or record.expires_at > ends):
                await self.store.save_key(replace(record, expires_at=ends))
        key = new_key(before.environment)
        await self.store.save_key(KeyRecord(key.key_id, client_id, key_hash(self.pepper, key.raw), now))
        after = before.with_changes(rotated_at=now)
        await self.store.save_client(after)
        await self.client_changes.publish(client_id)
        await self._audit(actor, "client.rotate_key", client_id, before, after, key_id=key.key_id,
                          previous_keys_expire_at=ends.isoformat())
        return IssuedKey(after, key.raw, key.key_id, ends)

    async def revoke(self, actor: str, client_id: str) -> Client:
        """Immediately: every key and token of the client stops working."""
        before = await self._existing(client_id)
        if before.status is ClientStatus.REVOKED:
            return before
        now = datetime.now(UTC)
        after = before.with_changes(status=ClientStatus.REVOKED, revoked_at=now)
        await self.store.save_client(after)
        for record in await self.store.keys_of(client_id):
            if record.valid_at(now):
                await self.store.save_key(replace(record, expires_at=now))
        await self.client_changes.publish(client_id)
        await self._audit(actor, "client.revoke", client_id, before, after)
        return after

    async def _audit(self, actor: str, action: str, client_id: str | None, before: Client | None,
                     after: Client | None, **detail: Any) -> None:
        after_dict = after.to_dict() if after else None
        if after_dict is not None and detail:
            after_dict = {**after_dict, "detail": detail}
        await self.store.append_audit(AuditEntry(
            id=new_id("au"),
            at=datetime.now(UTC),
            actor=actor,
            action=action,
            client_id=client_id,
            before=before.to_dict() if before else None,
            after=after_dict,
        ))
