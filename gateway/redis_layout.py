"""The keys of a store kept before they had hash tags, renamed once to the layout of today.

Keys that one script or transaction touches together share a hash tag, so that they sit in one slot
of a Redis Cluster (docs/deployment.md lists them all). Three groups of lasting data got their tag
after deployments already kept data under the old names, on one server or behind Sentinel:

    client store        client:*, clients, client_names, key:*, client_keys:*  ->  {clients}:…
    outbound webhooks   wh:*                                                     ->  {wh}:…
    webhook inbox       webhooks:inbox, webhooks:seen:*                          ->  {webhooks}:…

(everything under `store.prefix`). `migrate(client, prefix)` renames them (RENAMENX: TTLs, stream
consumer groups and all come along; a key already renamed by another replica starting at the same
moment is left alone), each group's anchor last, so that a start interrupted half-way finishes the
job at the next one. Where no old anchor exists, it costs three EXISTS and nothing else; on a Redis
Cluster it does nothing (a cluster could not be configured before the tags were there). Counters
and locks that only live seconds to a day (quotas, subscription slots) were simply renamed: they
start afresh.

Replicas of the old layout must not run beside one of the new: stop them all, then start the new.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from gateway.redis_connect import is_cluster

log = logging.getLogger("parkgate.redis_layout")

BATCH = 500


@dataclass(frozen=True)
class Group:
    name: str
    #: the old key that exists whenever the group holds anything, and its new name: renamed last
    anchor: tuple[str, str]
    #: old names as `*` patterns -> what replaces the part before the `*` (all after `store.prefix`)
    patterns: tuple[tuple[str, str], ...] = ()


GROUPS = (
    Group("client store", ("clients", "{clients}:clients"), (
        ("client:*", "{clients}:client:"), ("key:*", "{clients}:key:"), ("client_keys:*", "{clients}:client_keys:"),
        ("client_names", "{clients}:client_names"),
    )),
    Group("outbound webhooks", ("wh:due", "{wh}:due"), (("wh:*", "{wh}:"),)),
    Group("webhook inbox", ("webhooks:inbox", "{webhooks}:inbox"), (("webhooks:seen:*", "{webhooks}:seen:"),)),
)


async def migrate(client: Any, prefix: str) -> int:
    """Rename the keys of every group still in the old layout; how many were renamed."""
    if is_cluster(client):
        return 0
    renamed = 0
    for group in GROUPS:
        old_anchor, new_anchor = (prefix + name for name in group.anchor)
        if not await client.exists(old_anchor):
            continue
        count = 0
        for old, new in group.patterns:
            stem = prefix + old.removesuffix("*")
            batch: list[str] = []
            async for raw in client.scan_iter(match=prefix + old, count=BATCH):
                key = raw.decode()
                if key != old_anchor:
                    batch.append(key)
                if len(batch) >= BATCH:
                    count += await _rename(client, [(k, prefix + new + k[len(stem):]) for k in batch])
                    batch = []
            count += await _rename(client, [(k, prefix + new + k[len(stem):]) for k in batch])
        count += await _rename(client, [(old_anchor, new_anchor)])
        log.warning("store layout: %d keys of the %s renamed to their hash-tagged names", count, group.name)
        renamed += count
    return renamed


async def _rename(client: Any, pairs: list[tuple[str, str]]) -> int:
    if not pairs:
        return 0
    async with client.pipeline(transaction=False) as pipe:
        for old, new in pairs:
            pipe.renamenx(old, new)
        results = await pipe.execute(raise_on_error=False)  # "no such key": another replica was first
    return sum(1 for r in results if r is True or r == 1)
