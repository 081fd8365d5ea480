"""Clients, their key records and the audit log, behind one store interface.

`MemoryClientStore` serves the sandbox and a single process; `RedisClientStore`
(gateway/auth/redis_store.py) serves deployments: it survives restarts and every replica
sees the same clients, so a revocation through one replica holds on all of them.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from gateway.auth.keys import Environment


class ClientStatus(StrEnum):
    ACTIVE = "ACTIVE"
    REVOKED = "REVOKED"


@dataclass(frozen=True)
class Client:
    id: str
    name: str
    environment: Environment
    scopes: frozenset[str]
    #: the facilities the client may see; None means every facility
    facilities: frozenset[str] | None
    created_at: datetime
    plan: str = "standard"
    status: ClientStatus = ClientStatus.ACTIVE
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None
    contact: str | None = None
    notes: str | None = None
    #: per-client quota settings that override the plan's (the quotas issue)
    quota_overrides: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["scopes"] = sorted(self.scopes)
        data["facilities"] = None if self.facilities is None else sorted(self.facilities)
        for name in ("created_at", "rotated_at", "revoked_at"):
            data[name] = data[name].isoformat() if data[name] else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Client:
        return cls(
            id=data["id"],
            name=data["name"],
            environment=Environment(data["environment"]),
            scopes=frozenset(data["scopes"]),
            facilities=None if data["facilities"] is None else frozenset(data["facilities"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            plan=data.get("plan", "standard"),
            status=ClientStatus(data.get("status", "ACTIVE")),
            rotated_at=datetime.fromisoformat(data["rotated_at"]) if data.get("rotated_at") else None,
            revoked_at=datetime.fromisoformat(data["revoked_at"]) if data.get("revoked_at") else None,
            contact=data.get("contact"),
            notes=data.get("notes"),
            quota_overrides=dict(data.get("quota_overrides") or {}),
        )

    def with_changes(self, **changes: Any) -> Client:
        return replace(self, **changes)


@dataclass(frozen=True)
class KeyRecord:
    """A key as stored: its public id, its owner, its keyed hash, and until when it is valid."""

    key_id: str
    client_id: str
    hash: str
    created_at: datetime
    expires_at: datetime | None = None  # set when the key is rotated out or revoked

    def valid_at(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "client_id": self.client_id,
            "hash": self.hash,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeyRecord:
        return cls(
            key_id=data["key_id"],
            client_id=data["client_id"],
            hash=data["hash"],
            created_at=datetime.fromisoformat(data["created_at"]),
            expires_at=datetime.fromisoformat(data["expires_at"]) if data.get("expires_at") else None,
        )


@dataclass(frozen=True)
class AuditEntry:
    """One admin action: who did what to which client, when, and the client before and after."""

    id: str
    at: datetime
    actor: str
    action: str
    client_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditEntry:
        return cls(**{**data, "at": datetime.fromisoformat(data["at"])})


class ClientStore(ABC):
    """Where clients, key records, the audit log and token signing keys live."""

    #: how many writes of clients, keys and signing keys this process's store has seen, when it
    #: sees every write there is (memory: one process); None when other replicas write too (Redis).
    #: Whoever decides from the store may reuse a decision while the count has not moved.
    changes: int | None = None

    @abstractmethod
    async def save_client(self, client: Client) -> None: ...

    @abstractmethod
    async def client(self, client_id: str) -> Client | None: ...

    @abstractmethod
    async def client_by_name(self, name: str) -> Client | None: ...

    @abstractmethod
    async def clients(self) -> list[Client]:
        """Every client, oldest first."""

    @abstractmethod
    async def save_key(self, record: KeyRecord) -> None: ...

    @abstractmethod
    async def key(self, key_id: str) -> KeyRecord | None: ...

    @abstractmethod
    async def keys_of(self, client_id: str) -> list[KeyRecord]: ...

    @abstractmethod
    async def append_audit(self, entry: AuditEntry) -> None: ...

    @abstractmethod
    async def audit(self) -> list[AuditEntry]:
        """Every audit entry, newest first."""

    @abstractmethod
    async def signing_keys(self) -> list[dict[str, Any]]:
        """The token signing keys (private JWKs with `kid` and `created_at`), newest first."""

    @abstractmethod
    async def save_signing_keys(self, keys: list[dict[str, Any]]) -> None: ...

    async def ping(self) -> None:
        """Raise when the store cannot be reached."""

    async def aclose(self) -> None:
        pass


class MemoryClientStore(ClientStore):
    changes: int  # it sees every write: one process

    def __init__(self) -> None:
        self._clients: dict[str, Client] = {}
        self._keys: dict[str, KeyRecord] = {}
        self._audit: list[AuditEntry] = []
        self._signing_keys: list[dict[str, Any]] = []
        self.lock = asyncio.Lock()
        self.changes = 0

    async def save_client(self, client: Client) -> None:
        self._clients[client.id] = client
        self.changes += 1

    async def client(self, client_id: str) -> Client | None:
        return self._clients.get(client_id)

    async def client_by_name(self, name: str) -> Client | None:
        return next((c for c in self._clients.values() if c.name == name), None)

    async def clients(self) -> list[Client]:
        return sorted(self._clients.values(), key=lambda c: (c.created_at, c.id))

    async def save_key(self, record: KeyRecord) -> None:
        self._keys[record.key_id] = record
        self.changes += 1

    async def key(self, key_id: str) -> KeyRecord | None:
        return self._keys.get(key_id)

    async def keys_of(self, client_id: str) -> list[KeyRecord]:
        return [k for k in self._keys.values() if k.client_id == client_id]

    async def append_audit(self, entry: AuditEntry) -> None:
        self._audit.append(entry)

    async def audit(self) -> list[AuditEntry]:
        return list(reversed(self._audit))

    async def signing_keys(self) -> list[dict[str, Any]]:
        return list(self._signing_keys)

    async def save_signing_keys(self, keys: list[dict[str, Any]]) -> None:
        self._signing_keys = list(keys)
        self.changes += 1
