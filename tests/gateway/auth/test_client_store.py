"""The client store contract, run against both stores; AdminService over each; Redis persistence.

The Redis tests use the session's own throwaway redis-server (`redis_url` in conftest) and a
fresh key prefix per test, so no test sees another's data and nothing is flushed.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
import redis.exceptions

from gateway.admin import AdminError, AdminService
from gateway.auth.clients import AuditEntry, Client, ClientStatus, ClientStore, KeyRecord, MemoryClientStore
from gateway.auth.keys import Environment, key_hash
from gateway.auth.redis_store import RedisClientStore

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PEPPER = b"test-pepper"
FACILITIES = ("fac_north", "fac_south", "fac_airport")


def a_client(n: int = 1, **changes: Any) -> Client:
    client = Client(id=f"cl_{n:04d}", name=f"client {n}", environment=Environment.TEST,
                    scopes=frozenset({"facilities:read"}), facilities=None, created_at=T0 + timedelta(minutes=n))
    return client.with_changes(**changes)


def full_client() -> Client:
    """A client with every field set away from its default."""
    return Client(
        id="cl_full", name="Full Client", environment=Environment.LIVE,
        scopes=frozenset({"facilities:read", "reservations:write", "admin"}),
        facilities=frozenset({"fac_north", "fac_airport"}),
        created_at=T0, plan="enterprise", status=ClientStatus.REVOKED,
        rotated_at=T0 + timedelta(days=1), revoked_at=T0 + timedelta(days=2, microseconds=17),
        contact="ops@example.com", notes="naïve notes — with unicode ✓",
        quota_overrides={"requests_per_minute": 1200, "burst": 0},
    )


def an_entry(n: int, **changes: Any) -> AuditEntry:
    entry = AuditEntry(id=f"au_{n:04d}", at=T0 + timedelta(seconds=n), actor="alice", action="client.update",
                       client_id="cl_0001", before={"plan": "standard", "n": n},
                       after={"plan": "gold", "n": n, "detail": {"key_id": "abc", "list": [1, 2]}})
    return replace(entry, **changes)


def new_redis_store(url: str, prefix: str | None = None, **kwargs: Any) -> RedisClientStore:
    return RedisClientStore.from_url(url, prefix=prefix or f"test:{uuid.uuid4().hex}:", **kwargs)


@pytest_asyncio.fixture
async def redis_store(redis_url: str) -> AsyncIterator[RedisClientStore]:
    store = new_redis_store(redis_url)
    yield store
    await store.aclose()


@pytest_asyncio.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ClientStore]:
    if request.param == "memory":
        yield MemoryClientStore()
        return
    redis_store = new_redis_store(request.getfixturevalue("redis_url"))
    yield redis_store
    await redis_store.aclose()


def by_key_id(records: list[KeyRecord]) -> list[KeyRecord]:
    return sorted(records, key=lambda r: r.key_id)


# --- the contract: every ClientStore method, the same on both stores ---------------------


async def test_client_round_trip_every_field(store: ClientStore) -> None:
    client = full_client()
    await store.save_client(client)
    loaded = await store.client(client.id)
    assert loaded == client
    assert loaded is not None
    assert loaded.facilities == frozenset({"fac_north", "fac_airport"})
    assert loaded.quota_overrides == {"requests_per_minute": 1200, "burst": 0}
    assert loaded.status is ClientStatus.REVOKED and loaded.environment is Environment.LIVE
    assert loaded.revoked_at == T0 + timedelta(days=2, microseconds=17)


async def test_client_round_trip_defaults(store: ClientStore) -> None:
    client = a_client(1)
    await store.save_client(client)
    loaded = await store.client(client.id)
    assert loaded == client
    assert loaded is not None
    assert loaded.facilities is None  # every facility, not "no facility"
    assert loaded.quota_overrides == {}
    assert loaded.rotated_at is None and loaded.revoked_at is None and loaded.contact is None


async def test_facilities_none_and_empty_set_differ(store: ClientStore) -> None:
    await store.save_client(a_client(1, facilities=None))
    await store.save_client(a_client(2, facilities=frozenset()))
    assert (await store.client("cl_0001")).facilities is None  # type: ignore[union-attr]
    assert (await store.client("cl_0002")).facilities == frozenset()  # type: ignore[union-attr]


async def test_unknown_client(store: ClientStore) -> None:
    assert await store.client("cl_nope") is None
    assert await store.client_by_name("nobody") is None
    assert await store.clients() == []


async def test_client_by_name(store: ClientStore) -> None:
    await store.save_client(a_client(1))
    await store.save_client(a_client(2))
    assert await store.client_by_name("client 2") == a_client(2)
    assert await store.client_by_name("CLIENT 2") is None  # exact match


async def test_save_client_replaces(store: ClientStore) -> None:
    await store.save_client(a_client(1))
    changed = a_client(1, plan="gold", quota_overrides={"rpm": 5}, facilities=frozenset({"fac_north"}))
    await store.save_client(changed)
    assert await store.client("cl_0001") == changed
    assert await store.client_by_name("client 1") == changed
    assert await store.clients() == [changed]


async def test_rename_frees_the_old_name(store: ClientStore) -> None:
    await store.save_client(a_client(1))
    await store.save_client(a_client(1, name="renamed"))
    assert await store.client_by_name("client 1") is None
    assert await store.client_by_name("renamed") == a_client(1, name="renamed")


async def test_duplicate_name_saved_directly_first_keeps_the_name(store: ClientStore) -> None:
    """The store does not refuse duplicates (AdminService does); both stores answer alike."""
    await store.save_client(a_client(1, name="same"))
    await store.save_client(a_client(2, name="same"))
    assert (await store.client_by_name("same")).id == "cl_0001"  # type: ignore[union-attr]
    assert [c.id for c in await store.clients()] == ["cl_0001", "cl_0002"]


async def test_clients_oldest_first_ties_by_id(store: ClientStore) -> None:
    late, early = a_client(3), a_client(1)
    tie_b, tie_a = a_client(2, id="cl_b"), a_client(2, id="cl_a")
    for client in (late, tie_b, early, tie_a):
        await store.save_client(client)
    assert await store.clients() == [early, tie_a, tie_b, late]


async def test_key_round_trip(store: ClientStore) -> None:
    live = KeyRecord("k1aaaaaaaaaa", "cl_0001", "ab" * 32, T0)
    expiring = KeyRecord("k2aaaaaaaaaa", "cl_0001", "cd" * 32, T0, expires_at=T0 + timedelta(hours=24))
    await store.save_key(live)
    await store.save_key(expiring)
    assert await store.key(live.key_id) == live
    assert await store.key(expiring.key_id) == expiring
    assert await store.key("nokey") is None


async def test_keys_of(store: ClientStore) -> None:
    mine = [KeyRecord(f"mine{i:08d}", "cl_0001", f"h{i}", T0 + timedelta(minutes=i)) for i in range(3)]
    theirs = KeyRecord("theirs000000", "cl_0002", "h", T0)
    for record in (mine[2], theirs, mine[0], mine[1]):
        await store.save_key(record)
    assert by_key_id(await store.keys_of("cl_0001")) == mine
    assert await store.keys_of("cl_0002") == [theirs]
    assert await store.keys_of("cl_none") == []


async def test_save_key_replaces(store: ClientStore) -> None:
    record = KeyRecord("k1aaaaaaaaaa", "cl_0001", "h", T0)
    await store.save_key(record)
    expired = replace(record, expires_at=T0 + timedelta(hours=1))
    await store.save_key(expired)
    assert await store.key(record.key_id) == expired
    assert await store.keys_of("cl_0001") == [expired]


async def test_audit_newest_first(store: ClientStore) -> None:
    assert await store.audit() == []
    entries = [an_entry(1, before=None, action="client.create"), an_entry(2), an_entry(3, after=None, client_id=None)]
    for entry in entries:
        await store.append_audit(entry)
    assert await store.audit() == list(reversed(entries))


async def test_audit_order_is_append_order_not_timestamp(store: ClientStore) -> None:
    await store.append_audit(an_entry(1, at=T0 + timedelta(hours=1)))
    await store.append_audit(an_entry(2, at=T0))
    assert [e.id for e in await store.audit()] == ["au_0002", "au_0001"]


async def test_signing_keys_round_trip(store: ClientStore) -> None:
    assert await store.signing_keys() == []
    keys = [
        {"kid": "k2", "kty": "OKP", "crv": "Ed25519", "d": "c2VjcmV0", "x": "cHVi", "created_at": "2025-03-02T00:00:00+00:00"},
        {"kid": "k1", "kty": "OKP", "crv": "Ed25519", "d": "b2xk", "x": "b2xk", "created_at": "2025-03-01T00:00:00+00:00"},
    ]
    await store.save_signing_keys(keys)
    assert await store.signing_keys() == keys
    await store.save_signing_keys(keys[:1])
    assert await store.signing_keys() == keys[:1]
    await store.save_signing_keys([])
    assert await store.signing_keys() == []


async def test_signing_keys_are_a_copy(store: ClientStore) -> None:
    keys = [{"kid": "k1"}]
    await store.save_signing_keys(keys)
    keys.append({"kid": "k2"})
    (await store.signing_keys()).append({"kid": "k3"})
    assert await store.signing_keys() == [{"kid": "k1"}]


async def test_ping(store: ClientStore) -> None:
    await store.ping()


async def test_both_stores_answer_alike(redis_url: str) -> None:
    """One script of calls against both stores, every answer compared."""
    memory, redis_store = MemoryClientStore(), new_redis_store(redis_url)

    async def script(s: ClientStore) -> list[Any]:
        out: list[Any] = []
        await s.save_client(full_client())
        await s.save_client(a_client(2, name="Full Client"))  # a duplicate name, saved directly
        await s.save_client(a_client(1, facilities=frozenset({"fac_south"})))
        await s.save_client(a_client(1, name="one", quota_overrides={"rpm": 10}))
        await s.save_key(KeyRecord("kaaaaaaaaaaa", "cl_0001", "h1", T0))
        await s.save_key(KeyRecord("kaaaaaaaaaaa", "cl_0001", "h1", T0, T0 + timedelta(days=1)))
        await s.save_key(KeyRecord("kbbbbbbbbbbb", "cl_full", "h2", T0))
        for n in range(5):
            await s.append_audit(an_entry(n))
        await s.save_signing_keys([{"kid": "a", "n": 1}])
        out.append(await s.clients())
        for name in ("Full Client", "one", "client 1", "nope"):
            out.append(await s.client_by_name(name))
        for client_id in ("cl_full", "cl_0001", "cl_0002", "cl_nope"):
            out.append(await s.client(client_id))
            out.append(by_key_id(await s.keys_of(client_id)))
        out.append(await s.key("kaaaaaaaaaaa"))
        out.append(await s.audit())
        out.append(await s.signing_keys())
        return out

    try:
        assert await script(redis_store) == await script(memory)
    finally:
        await redis_store.aclose()


# --- AdminService over each store -------------------------------------------------------


@pytest.fixture
def admin(store: ClientStore) -> AdminService:
    return AdminService(store, PEPPER, FACILITIES, plans=("standard", "gold"))


async def stored_text(store: ClientStore) -> str:
    """Everything the store holds, as text, to look for a leaked key in."""
    if isinstance(store, MemoryClientStore):
        return repr(vars(store))
    assert isinstance(store, RedisClientStore)
    r, parts = store.redis, []
    async for name in r.scan_iter(match=store.prefix + "*"):
        kind = (await r.type(name)).decode()
        value: Any = {"string": r.get, "set": r.smembers, "hash": r.hgetall, "stream": r.xrange}[kind](name)
        parts.append(repr(await value))
    assert parts, "nothing stored under the prefix"
    return "\n".join(parts)


async def test_admin_create_stores_the_hash_not_the_key(admin: AdminService, store: ClientStore) -> None:
    issued = await admin.create_client("alice", name="Acme Parking", environment=Environment.LIVE,
                                       scopes=["facilities:read", "occupancy:read"], facilities=["fac_north"],
                                       contact="ops@acme.test")
    assert issued.key.startswith(f"pk_live_{issued.key_id}_")
    assert await store.client(issued.client.id) == issued.client
    assert await store.client_by_name("Acme Parking") == issued.client
    assert issued.client.facilities == frozenset({"fac_north"})
    record = await store.key(issued.key_id)
    assert record is not None and record.client_id == issued.client.id and record.expires_at is None
    assert record.hash == key_hash(PEPPER, issued.key) != issued.key
    text = await stored_text(store)
    assert issued.key not in text and issued.key.rsplit("_", 1)[1] not in text

    [entry] = await store.audit()
    assert (entry.actor, entry.action, entry.client_id, entry.before) == ("alice", "client.create", issued.client.id, None)
    assert entry.after == {**issued.client.to_dict(), "detail": {"key_id": issued.key_id}}


async def test_admin_all_facilities_is_none(admin: AdminService, store: ClientStore) -> None:
    issued = await admin.create_client("alice", name="Everywhere", environment=Environment.TEST,
                                       scopes="facilities:read rates:read")
    assert (await store.client(issued.client.id)).facilities is None  # type: ignore[union-attr]


async def test_admin_rotate_then_revoke(admin: AdminService, store: ClientStore) -> None:
    first = await admin.create_client("alice", name="Acme", environment=Environment.TEST, scopes=["rates:read"])
    client_id = first.client.id

    before_rotate = datetime.now(UTC)
    second = await admin.rotate_key("bob", client_id, grace=timedelta(hours=2))
    assert second.key != first.key and second.key_id != first.key_id
    old, new = await store.key(first.key_id), await store.key(second.key_id)
    assert old is not None and new is not None
    assert old.expires_at == second.previous_key_expires_at
    assert before_rotate + timedelta(hours=2) <= old.expires_at <= datetime.now(UTC) + timedelta(hours=2)
    assert new.expires_at is None and new.hash == key_hash(PEPPER, second.key)
    assert (await store.client(client_id)).rotated_at is not None  # type: ignore[union-attr]
    assert by_key_id(await store.keys_of(client_id)) == by_key_id([old, new])

    updated = await admin.update_client("carol", client_id, quota_overrides={"requests": 600},
                                        facilities=["fac_south"], plan="gold")
    assert await store.client(client_id) == updated
    assert updated.quota_overrides == {"requests": 600} and updated.facilities == frozenset({"fac_south"})

    revoked = await admin.revoke("dave", client_id)
    now = datetime.now(UTC)
    assert revoked.status is ClientStatus.REVOKED and revoked.revoked_at is not None
    assert await store.client(client_id) == revoked
    keys = await store.keys_of(client_id)
    assert len(keys) == 2
    assert all(k.expires_at is not None and k.expires_at <= now and not k.valid_at(now) for k in keys)
    assert await admin.revoke("dave", client_id) == revoked  # again: nothing changes

    audit = await store.audit()
    assert [(e.actor, e.action) for e in audit] == [
        ("dave", "client.revoke"), ("carol", "client.update"), ("bob", "client.rotate_key"), ("alice", "client.create"),
    ]
    revoke_entry, update_entry, rotate_entry, _ = audit
    assert revoke_entry.before is not None and revoke_entry.after is not None
    assert (revoke_entry.before["status"], revoke_entry.after["status"]) == ("ACTIVE", "REVOKED")
    assert update_entry.before["plan"] == "standard" and update_entry.after["plan"] == "gold"  # type: ignore[index]
    assert update_entry.before["facilities"] is None  # type: ignore[index]
    assert update_entry.after["facilities"] == ["fac_south"]  # type: ignore[index]
    assert rotate_entry.before["rotated_at"] is None  # type: ignore[index]
    assert rotate_entry.after["detail"]["key_id"] == second.key_id  # type: ignore[index]

    with pytest.raises(AdminError) as caught:
        await admin.rotate_key("bob", client_id)
    assert caught.value.code == "CONFLICT"


async def test_admin_duplicate_name_conflicts(admin: AdminService, store: ClientStore) -> None:
    await admin.create_client("alice", name="Acme", environment=Environment.TEST, scopes=["rates:read"])
    with pytest.raises(AdminError) as caught:
        await admin.create_client("alice", name="Acme", environment=Environment.LIVE, scopes=["rates:read"])
    assert caught.value.code == "CONFLICT"
    assert len(await store.clients()) == 1 and len(await store.audit()) == 1


@pytest.mark.parametrize("bad", [
    {"scopes": ["rates:read", "rates:delete"]},
    {"scopes": "not-a-scope"},
    {"scopes": ["rates:read"], "facilities": ["fac_north", "fac_moon"]},
    {"scopes": ["rates:read"], "plan": "platinum"},
])
async def test_admin_bad_input_stores_nothing(admin: AdminService, store: ClientStore, bad: dict[str, Any]) -> None:
    with pytest.raises(AdminError) as caught:
        await admin.create_client("alice", name="Acme", environment=Environment.TEST, **bad)
    assert caught.value.code == "BAD_USER_INPUT"
    assert await store.clients() == [] and await store.audit() == []
    assert await store.client_by_name("Acme") is None


async def test_admin_update_unknown_facility(admin: AdminService, store: ClientStore) -> None:
    issued = await admin.create_client("alice", name="Acme", environment=Environment.TEST, scopes=["rates:read"])
    with pytest.raises(AdminError) as caught:
        await admin.update_client("alice", issued.client.id, facilities=["fac_moon"])
    assert caught.value.code == "BAD_USER_INPUT"
    assert await store.client(issued.client.id) == issued.client


# --- Redis only: persistence, isolation, reachability, the audit cap ----------------------


async def test_second_instance_sees_what_the_first_wrote(redis_url: str) -> None:
    """What a second replica, or the same one after a restart, sees."""
    prefix = f"test:{uuid.uuid4().hex}:"
    first = new_redis_store(redis_url, prefix)
    admin = AdminService(first, PEPPER, FACILITIES)
    issued = await admin.create_client("alice", name="Acme", environment=Environment.LIVE,
                                       scopes=["occupancy:read"], facilities=["fac_north"])
    await first.save_signing_keys([{"kid": "k1", "created_at": "2025-03-01T00:00:00+00:00"}])
    await first.aclose()

    second = new_redis_store(redis_url, prefix)
    try:
        assert await second.client(issued.client.id) == issued.client
        assert await second.client_by_name("Acme") == issued.client
        assert await second.clients() == [issued.client]
        record = await second.key(issued.key_id)
        assert record is not None and record.hash == key_hash(PEPPER, issued.key)
        assert [e.action for e in await second.audit()] == ["client.create"]
        assert await second.signing_keys() == [{"kid": "k1", "created_at": "2025-03-01T00:00:00+00:00"}]

        # a revocation through the second replica holds for a third
        await AdminService(second, PEPPER, FACILITIES).revoke("bob", issued.client.id)
        with pytest.raises(AdminError) as caught:
            await AdminService(second, PEPPER, FACILITIES).create_client(
                "bob", name="Acme", environment=Environment.TEST, scopes=["rates:read"])
        assert caught.value.code == "CONFLICT"
    finally:
        await second.aclose()

    third = new_redis_store(redis_url, prefix)
    try:
        assert (await third.client(issued.client.id)).status is ClientStatus.REVOKED  # type: ignore[union-attr]
        assert not (await third.key(issued.key_id)).valid_at(datetime.now(UTC))  # type: ignore[union-attr]
        assert [e.action for e in await third.audit()] == ["client.revoke", "client.create"]
    finally:
        await third.aclose()


async def test_prefixes_do_not_see_each_other(redis_url: str) -> None:
    one, two = new_redis_store(redis_url), new_redis_store(redis_url)
    try:
        await one.save_client(a_client(1))
        await one.save_key(KeyRecord("kaaaaaaaaaaa", "cl_0001", "h", T0))
        await one.append_audit(an_entry(1))
        await one.save_signing_keys([{"kid": "x"}])
        assert await two.client("cl_0001") is None and await two.clients() == []
        assert await two.client_by_name("client 1") is None
        assert await two.key("kaaaaaaaaaaa") is None and await two.keys_of("cl_0001") == []
        assert await two.audit() == [] and await two.signing_keys() == []
    finally:
        await one.aclose()
        await two.aclose()


async def test_works_with_decoded_responses(redis_url: str) -> None:
    store = new_redis_store(redis_url, decode_responses=True)
    try:
        await store.save_client(full_client())
        await store.save_key(KeyRecord("kaaaaaaaaaaa", "cl_full", "h", T0))
        await store.append_audit(an_entry(1))
        await store.save_signing_keys([{"kid": "x"}])
        assert await store.clients() == [full_client()]
        assert await store.client_by_name("Full Client") == full_client()
        assert [k.key_id for k in await store.keys_of("cl_full")] == ["kaaaaaaaaaaa"]
        assert await store.audit() == [an_entry(1)]
        assert await store.signing_keys() == [{"kid": "x"}]
    finally:
        await store.aclose()


def a_closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_ping_raises_when_redis_is_unreachable() -> None:
    store = RedisClientStore.from_url(f"redis://127.0.0.1:{a_closed_port()}/0", retries=0, connect_timeout_s=2)
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            await store.ping()
    finally:
        await store.aclose()


async def test_aclose_closes_the_client(redis_url: str) -> None:
    closed: list[bool] = []
    store = new_redis_store(redis_url)
    await store.ping()
    original: Callable[[], Any] = store.redis.aclose

    async def spy() -> None:
        closed.append(True)
        await original()

    store.redis.aclose = spy  # type: ignore[method-assign]
    await store.aclose()
    assert closed == [True]


async def test_audit_is_capped(redis_url: str) -> None:
    store = RedisClientStore(aioredis.Redis.from_url(redis_url), prefix=f"test:{uuid.uuid4().hex}:", audit_max_len=10)
    try:
        for n in range(400):
            await store.append_audit(an_entry(n))
        audit = await store.audit()
        assert 10 <= len(audit) < 400  # approximate trimming: whole stream nodes go, so about the cap
        assert audit[0].id == "au_0399"  # the newest stay
    finally:
        await store.aclose()


async def test_default_cap_and_prefix(redis_url: str) -> None:
    store = RedisClientStore(aioredis.Redis.from_url(redis_url))
    try:
        assert store.prefix == "parkgate:" and store.audit_max_len == 100_000
    finally:
        await store.aclose()
