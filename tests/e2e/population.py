"""Registered devices by the thousand, written straight to Redis as the gateway's registration
writes them, for tests of large audiences."""

from __future__ import annotations

import redis.asyncio as redis

from proto import keys
from proto.envelopes import DeviceRecord, encode_internal


async def populate(redis_client: redis.Redis, app_id: str, count: int,
                   vendor: str = "") -> list[str]:
    """``count`` registered, offline devices (device record, the app's device set); without a
    vendor channel, or each with a token of ``vendor`` (``t-<registration id>``)."""
    rids = [f"r{i:07d}" for i in range(count)]
    plain = encode_internal(DeviceRecord(platform="android", created_ms=1))
    for start in range(0, count, 10_000):
        async with redis_client.pipeline(transaction=False) as pipe:
            chunk = rids[start:start + 10_000]
            for rid in chunk:
                record = encode_internal(DeviceRecord(
                    platform="android", vendor=vendor, vendor_token=f"t-{rid}",
                    created_ms=1)) if vendor else plain
                pipe.set(keys.device(app_id, rid), record)
            pipe.sadd(keys.all_devices(app_id), *chunk)
            await pipe.execute()
    return rids
