"""Authentication over the memory store reuses a key's principal only while nothing it was decided
from changed (gateway/auth/principal_memo.py): every admin change holds from the next request."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.admin import AdminService
from gateway.auth.authenticate import Authenticator, AuthError
from gateway.auth.clients import MemoryClientStore
from gateway.auth.keys import Environment
from gateway.auth.redis_store import RedisClientStore

PEPPER = b"test-pepper"
FACILITIES = ("fac_north", "fac_south")


async def a_client(store: MemoryClientStore) -> tuple[AdminService, Authenticator, str, str]:
    admin = AdminService(store, PEPPER, FACILITIES, plans=("standard", "gold"))
    authenticator = Authenticator(store, PEPPER, Environment.TEST, None, cache_ttl_s=0.0)
    issued = await admin.create_client("test", name="memo", environment=Environment.TEST, scopes=["facilities:read"])
    for _ in range(2):  # the second is answered from the memo
        principal = await authenticator.authenticate(f"Bearer {issued.key}", None)
        assert principal.client_id == issued.client.id and principal.scopes == frozenset({"facilities:read"})
    return admin, authenticator, issued.client.id, issued.key


async def test_a_revocation_holds_from_the_next_request() -> None:
    admin, authenticator, client_id, key = await a_client(MemoryClientStore())
    await admin.revoke("test", client_id)
    with pytest.raises(AuthError, match="revoked"):
        await authenticator.authenticate(None, key)


async def test_scope_facility_and_plan_changes_hold_from_the_next_request() -> None:
    admin, authenticator, client_id, key = await a_client(MemoryClientStore())
    await admin.update_client("test", client_id, scopes=["facilities:read", "reservations:write"],
                              facilities=["fac_north"], plan="gold")
    principal = await authenticator.authenticate(f"Bearer {key}", None)
    assert principal.scopes == frozenset({"facilities:read", "reservations:write"})
    assert principal.facilities == frozenset({"fac_north"}) and principal.plan == "gold"


async def test_a_rotated_key_is_refused_once_its_grace_ends_with_no_write_in_between() -> None:
    store = MemoryClientStore()
    admin, authenticator, client_id, old_key = await a_client(store)
    issued = await admin.rotate_key("test", client_id, grace=timedelta(seconds=0.2))
    assert (await authenticator.authenticate(None, old_key)).client_id == client_id  # in its grace: kept again
    assert (await authenticator.authenticate(None, issued.key)).client_id == client_id
    changes = store.changes
    await asyncio.sleep(0.25)
    assert store.changes == changes  # nothing was written: only the clock says the old key is done
    with pytest.raises(AuthError, match="expired"):
        await authenticator.authenticate(None, old_key)
    assert (await authenticator.authenticate(None, issued.key)).client_id == client_id


async def test_a_key_record_expired_by_a_write_is_refused_at_once() -> None:
    store = MemoryClientStore()
    _, authenticator, client_id, key = await a_client(store)
    (record,) = await store.keys_of(client_id)
    await store.save_key(replace(record, expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    with pytest.raises(AuthError, match="expired"):
        await authenticator.authenticate(None, key)


def test_stores_that_do_not_see_every_write_offer_no_count() -> None:
    assert RedisClientStore.changes is None and MemoryClientStore().changes == 0


async def test_on_redis_a_principal_lasts_as_long_as_the_records_it_came_from(redis_url: str) -> None:
    """A store that cannot count every replica's writes: the principal is kept exactly as long as the
    short cache keeps the key and client records (a change no notice told of holds after that), and a
    notice (`forget`) drops it at once."""
    store = RedisClientStore.from_url(redis_url, prefix=f"test-memo-{uuid.uuid4().hex[:8]}:")
    elsewhere = AdminService(store, PEPPER, FACILITIES, plans=("standard",))  # another replica's admin
    authenticator = Authenticator(store, PEPPER, Environment.TEST, None, cache_ttl_s=0.3)
    try:
        issued = await elsewhere.create_client("test", name="memo", environment=Environment.TEST, scopes=["facilities:read"])
        first = await authenticator.authenticate(None, issued.key)
        assert await authenticator.authenticate(None, issued.key) is first  # decided once
        await elsewhere.revoke("test", issued.client.id)  # no notice reaches this authenticator
        assert (await authenticator.authenticate(None, issued.key)).client_id == issued.client.id  # within the bound
        await asyncio.sleep(0.35)
        with pytest.raises(AuthError, match="revoked"):
            await authenticator.authenticate(None, issued.key)

        other = await elsewhere.create_client("test", name="memo-2", environment=Environment.TEST, scopes=["facilities:read"])
        await authenticator.authenticate(None, other.key)
        await elsewhere.revoke("test", other.client.id)
        authenticator.forget(other.client.id)  # the notice of the change (gateway/auth/changes.py)
        with pytest.raises(AuthError, match="revoked"):
            await authenticator.authenticate(None, other.key)
    finally:
        await store.redis.aclose()
