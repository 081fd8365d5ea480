"""A store kept before the hash tags (gateway/redis_layout.py) is renamed once and then read as
before: clients and their keys, partners' webhook endpoints and deliveries, the inbox with what is
still pending in it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import redis.asyncio as aioredis

from gateway.auth.clients import Client, KeyRecord
from gateway.auth.keys import Environment
from gateway.auth.redis_store import RedisClientStore
from gateway.redis_layout import migrate


async def test_a_store_of_the_old_layout_is_renamed_once_and_reads_as_before(redis_url: str) -> None:
    prefix = f"layout-{uuid.uuid4().hex[:8]}:"
    old = aioredis.Redis.from_url(redis_url)
    now = datetime.now(UTC)
    client = Client(id="cl_1", name="kiosk", environment=Environment.TEST, scopes=frozenset({"facilities:read"}),
                    facilities=None, created_at=now)
    record = KeyRecord(key_id="k1", client_id="cl_1", hash="h", created_at=now)
    store = RedisClientStore.from_url(redis_url, prefix=prefix)
    try:
        # what a gateway of before the tags wrote
        await old.set(f"{prefix}client:cl_1", orjson.dumps(client.to_dict()))
        await old.sadd(f"{prefix}clients", "cl_1")
        await old.hset(f"{prefix}client_names", "kiosk", "cl_1")
        await old.set(f"{prefix}key:k1", orjson.dumps(record.to_dict()))
        await old.sadd(f"{prefix}client_keys:cl_1", "k1")
        await old.set(f"{prefix}wh:endpoint:ep_1", b"{}")
        await old.zadd(f"{prefix}wh:due", {"dl_1": 1.0})
        await old.set(f"{prefix}webhooks:seen:parcs:abc", b"d:1", ex=3600)
        await old.xgroup_create(f"{prefix}webhooks:inbox", "processors", id="0", mkstream=True)
        await old.xadd(f"{prefix}webhooks:inbox", {"item": b"{}", "revision": 1})
        await old.xreadgroup("processors", "gone-replica", {f"{prefix}webhooks:inbox": ">"})  # taken, never acked
        await old.set(f"{prefix}signing_keys", b"[]")  # kept its name: read alone

        assert await migrate(store.redis, prefix) == 9  # 5 + 2 + 2
        assert [c.id for c in await store.clients()] == ["cl_1"]
        assert (await store.client_by_name("kiosk")) is not None
        assert [k.key_id for k in await store.keys_of("cl_1")] == ["k1"]
        assert await old.get(f"{prefix}{{wh}}:endpoint:ep_1") == b"{}"
        assert await old.zscore(f"{prefix}{{wh}}:due", "dl_1") == 1.0
        assert 0 < await old.ttl(f"{prefix}{{webhooks}}:seen:parcs:abc") <= 3600  # the TTL came along
        pending = await old.xpending(f"{prefix}{{webhooks}}:inbox", "processors")
        assert pending["pending"] == 1  # the consumer group and what is pending in it came along
        assert await old.get(f"{prefix}signing_keys") == b"[]"
        assert not await old.keys(f"{prefix}client:*") and not await old.keys(f"{prefix}wh:*")
        assert not await old.exists(f"{prefix}clients", f"{prefix}webhooks:inbox")

        assert await migrate(store.redis, prefix) == 0  # once: the old anchors are gone
    finally:
        for key in await old.keys(f"{prefix}*"):
            await old.delete(key)
        await old.aclose()
        await store.aclose()
