"""`store.redis_url`: which Redis each form names (gateway/redis_connect.py), and a form that names
none refused with the configuration."""

from __future__ import annotations

import pytest

from gateway.config import StoreConfig
from gateway.redis_connect import parse


def test_each_form_names_its_deployment() -> None:
    assert parse("redis://127.0.0.1:6379/2").shape == "server"
    assert parse("rediss://cache.internal:6380/0").tls
    cluster = parse("redis+cluster://:secret@10.0.0.1:7000,10.0.0.2,[::1]:7002")
    assert cluster.shape == "cluster" and cluster.password == "secret"
    assert cluster.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002))
    sentinel = parse("rediss+sentinel://app:pw@s1:26380,s2/parkgate/3?sentinel_password=other")
    assert (sentinel.shape, sentinel.tls, sentinel.service, sentinel.db) == ("sentinel", True, "parkgate", 3)
    assert sentinel.nodes == (("s1", 26380), ("s2", 26379))
    assert (sentinel.username, sentinel.password, sentinel.sentinel_password) == ("app", "pw", "other")


@pytest.mark.parametrize("url, problem", [
    ("http://127.0.0.1:6379", "must be one of"),
    ("redis+cluster://127.0.0.1:7000/3", "database 0 only"),
    ("redis+sentinel://127.0.0.1:26379", "service name"),
    ("redis+sentinel://127.0.0.1:26379/parkgate/zero", "must be a number"),
    ("redis+cluster://", "names no node"),
    ("redis+cluster://host:port", "is not host:port"),
])
def test_a_url_that_names_no_redis_is_refused_with_the_configuration(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        StoreConfig(backend="redis", redis_url=url)


def test_the_prefix_leaves_hash_tags_to_the_gateway() -> None:
    with pytest.raises(ValueError, match="must not contain"):
        StoreConfig(backend="redis", redis_url="redis://127.0.0.1:6379/0", prefix="{pg}:")
