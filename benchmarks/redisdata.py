"""Benchmark data in Redis: apps through the store, devices laid out by ``proto.keys``, and
cleaning up after a run."""

from __future__ import annotations

import redis.asyncio as redis

from benchmarks.procs import REDIS
from herald.apps import new_app
from herald.redis_store import RedisStore
from proto import keys
from proto.envelopes import AppRecord, DeviceRecord, encode_internal

_BATCH = 2000
#: Fake nodes stay alive this long (the router routes only to live nodes).
_ALIVE_MS = 3_600_000


def client() -> redis.Redis:
    """A Redis client on the benchmark's Redis."""
    return redis.Redis.from_url(REDIS)


async def create_app(app_id: str) -> AppRecord:
    """Create the app a run's devices belong to; its device secret signs their tokens."""
    store = RedisStore(REDIS)
    try:
        record = new_app(app_id)
        await store.put_app(record)
    finally:
        await store.close()
    return record


def node(app_id: str, index: int) -> str:
    """Id of fake gateway node ``index`` of a run (nobody reads its inbox)."""
    return f"{app_id}-node-{index}"


async def seed(r: redis.Redis, app_id: str, rids: list[str], *, online_tenths: int,
               nodes: int) -> None:
    """Store a sandbox device record for every device, and put ``online_tenths``/10 of them
    online, spread over ``nodes`` fake nodes that read as alive for an hour."""
    async with r.pipeline(transaction=False) as pipe:
        for i in range(nodes):
            pipe.set(keys.node_alive(node(app_id, i)), b"1", px=_ALIVE_MS)
        await pipe.execute()
    for start in range(0, len(rids), _BATCH):
        async with r.pipeline(transaction=False) as pipe:
            for i, rid in enumerate(rids[start:start + _BATCH], start):
                record = DeviceRecord(platform="android", vendor="sandbox",
                                      vendor_token=f"token-{i}")
                pipe.set(keys.device(app_id, rid), encode_internal(record))
                if i % 10 < online_tenths:
                    pipe.set(keys.presence(app_id, rid), f"{node(app_id, i % nodes)}:1",
                             px=_ALIVE_MS)
            await pipe.execute()


async def forget(app_id: str, nodes: list[str]) -> None:
    """Delete the app, every key of its devices and messages, and ``nodes``' inbox and
    liveness keys."""
    r = client()
    try:
        batch = [keys.app(app_id)]
        batch += [key for n in nodes for key in (keys.node_inbox(n), keys.node_alive(n))]
        async for key in r.scan_iter(match=f"{keys.PREFIX}:{{{app_id}[:}}]*", count=_BATCH):
            batch.append(key)
            if len(batch) >= _BATCH:
                await r.unlink(*batch)
                batch = []
        if batch:
            await r.unlink(*batch)
    finally:
        await r.aclose()
