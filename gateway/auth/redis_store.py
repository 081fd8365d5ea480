"""The client store in Redis: survives restarts, and every replica sees the same clients.

Key layout (every key starts with `prefix`, default `parkgate:`; `{clients}` is a hash tag: the
keys that one script or transaction touches together sit in one slot of a Redis Cluster):

    {clients}:client:<client id>       string  the client as JSON (Client.to_dict)
    {clients}:clients                  set     every client id (for `clients()`; no KEYS/SCAN needed)
    {clients}:client_names             hash    name -> client id (for `client_by_name`)
    {clients}:key:<key id>             string  the key record as JSON (KeyRecord.to_dict)
    {clients}:client_keys:<client id>  set     the client's key ids (for `keys_of`)
    audit                              stream  one entry per admin action, field `entry` = JSON;
                                               trimmed to about `audit_max_len` entries (100k)
    signing_keys                       string  the token signing keys as one JSON list

Before the hash tags (parkgate before its cluster support) the first five had no `{clients}:`;
gateway/redis_layout.py renames them once, at the first start on such a store.

Name uniqueness is AdminService's: it looks the name up, then saves. Two replicas creating
the same name at the same moment can both pass the look-up; both clients are then stored,
but the name index keeps the first (HSETNX-like, done in one Lua script with the save), so
`client_by_name` answers the same as the memory store does.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.auth.clients import AuditEntry, Client, ClientStore, KeyRecord
from gateway.redis_connect import RedisClient, connect
from gateway.redis_replies import text

DEFAULT_PREFIX = "parkgate:"
#: the hash tag of every client and key record and their indexes (one slot: one script saves them)
TAG = "{clients}"
AUDIT_MAX_LEN = 100_000

#: KEYS: client:<id>, clients, client_names   ARGV: json, id, name
#: Saves the client, adds it to the id set, frees its old name if it was renamed and takes
#: its name in the index unless another client holds it.
_SAVE_CLIENT = """
local old = redis.call('GET', KEYS[1])
if old then
  local old_name = cjson.decode(old)['name']
  if old_name ~= ARGV[3] and redis.call('HGET', KEYS[3], old_name) == ARGV[2] then
    redis.call('HDEL', KEYS[3], old_name)
  end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return redis.call('HSETNX', KEYS[3], ARGV[3], ARGV[2])
"""


class RedisClientStore(ClientStore):
    def __init__(self, redis: RedisClient, prefix: str = DEFAULT_PREFIX,
                 audit_max_len: int = AUDIT_MAX_LEN) -> None:
        self.redis = redis
        self.prefix = prefix
        self.audit_max_len = audit_max_len
        self._save_client = redis.register_script(_SAVE_CLIENT)

    @classmethod
    def from_url(cls, url: str, prefix: str = DEFAULT_PREFIX, **kwargs: Any) -> RedisClientStore:
        """A store on a new connection pool; `kwargs` go to `gateway.redis_connect.connect`."""
        kwargs.setdefault("timeout_s", 1.0)
        return cls(connect(url, **kwargs), prefix)

    def _k(self, *parts: str) -> str:
        """A key of the client records (hash-tagged: they are saved and read together)."""
        return f"{self.prefix}{TAG}:" + ":".join(parts)

    # --- clients ------------------------------------------------------------------------

    async def save_client(self, client: Client) -> None:
        await self._save_client(
            keys=[self._k("client", client.id), self._k("clients"), self._k("client_names")],
            args=[orjson.dumps(client.to_dict()), client.id, client.name],
        )

    async def client(self, client_id: str) -> Client | None:
        raw = await self.redis.get(self._k("client", client_id))
        return None if raw is None else Client.from_dict(orjson.loads(raw))

    async def client_by_name(self, name: str) -> Client | None:
        client_id = await self.redis.hget(self._k("client_names"), name)
        if client_id is None:
            return None
        client = await self.client(text(client_id))
        return client if client is not None and client.name == name else None

    async def clients(self) -> list[Client]:
        ids = sorted(text(i) for i in await self.redis.smembers(self._k("clients")))
        if not ids:
            return []
        raws = await self.redis.mget([self._k("client", i) for i in ids])
        found = [Client.from_dict(orjson.loads(raw)) for raw in raws if raw is not None]
        return sorted(found, key=lambda c: (c.created_at, c.id))

    # --- keys ---------------------------------------------------------------------------

    async def save_key(self, record: KeyRecord) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._k("key", record.key_id), orjson.dumps(record.to_dict()))
            pipe.sadd(self._k("client_keys", record.client_id), record.key_id)
            await pipe.execute()

    async def key(self, key_id: str) -> KeyRecord | None:
        raw = await self.redis.get(self._k("key", key_id))
        return None if raw is None else KeyRecord.from_dict(orjson.loads(raw))

    async def keys_of(self, client_id: str) -> list[KeyRecord]:
        """The client's keys, oldest first."""
        ids = sorted(text(i) for i in await self.redis.smembers(self._k("client_keys", client_id)))
        if not ids:
            return []
        raws = await self.redis.mget([self._k("key", i) for i in ids])
        records = [KeyRecord.from_dict(orjson.loads(raw)) for raw in raws if raw is not None]
        return sorted((r for r in records if r.client_id == client_id), key=lambda r: (r.created_at, r.key_id))

    # --- audit --------------------------------------------------------------------------

    async def append_audit(self, entry: AuditEntry) -> None:
        await self.redis.xadd(self.prefix + "audit", {"entry": orjson.dumps(entry.to_dict())},
                              maxlen=self.audit_max_len, approximate=True)

    async def audit(self) -> list[AuditEntry]:
        rows = await self.redis.xrevrange(self.prefix + "audit") or []
        return [AuditEntry.from_dict(orjson.loads(raw)) for _, fields in rows
                if fields and (raw := fields.get(b"entry", fields.get("entry"))) is not None]

    # --- signing keys -------------------------------------------------------------------

    async def signing_keys(self) -> list[dict[str, Any]]:
        raw = await self.redis.get(self.prefix + "signing_keys")
        return [] if raw is None else orjson.loads(raw)

    async def save_signing_keys(self, keys: list[dict[str, Any]]) -> None:
        """`keys` must be JSON values (strings, numbers, lists, dicts), as JWKs are."""
        await self.redis.set(self.prefix + "signing_keys", orjson.dumps(keys))

    # --- lifecycle ----------------------------------------------------------------------

    async def ping(self) -> None:
        await self.redis.ping()

    async def aclose(self) -> None:
        await self.redis.aclose()
