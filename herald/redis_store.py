"""``Store`` on Redis (redis.asyncio with hiredis). Key layout: ``proto.keys``."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as redis

from herald.store import DeviceState, Held, Presence
from proto import keys
from proto.envelopes import DeviceRecord, decode_device_record, encode_internal
from proto.errors import DecodeError

# A new connection takes the next epoch and overwrites presence in one step, so two racing
# logins of one device end with the higher epoch in place.
_CONNECT = """
local e = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], ARGV[1] .. ':' .. e, 'EX', ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
return e
"""
# Refresh only our own presence; re-create it if it expired while we still hold the socket
# (a stalled node or a Redis restart), but never overwrite a newer connection's.
_REFRESH = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then return redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if not v then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) return 1 end
return 0
"""
_DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_FIELD = b"e"


def _presence_value(node: str, epoch: int) -> bytes:
    return f"{node}:{epoch}".encode()


def _parse_presence(raw: bytes | None) -> Presence | None:
    if raw is None:
        return None
    node, _, epoch = raw.decode().rpartition(":")
    return Presence(node, int(epoch))


def _parse_record(raw: bytes | None) -> DeviceRecord | None:
    if raw is None:
        return None
    try:
        return decode_device_record(raw)
    except DecodeError:
        return None


class RedisStore:
    """Redis implementation of ``herald.store.Store``."""

    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url, decode_responses=False)
        self._connect = self._redis.register_script(_CONNECT)
        self._refresh = self._redis.register_script(_REFRESH)
        self._drop = self._redis.register_script(_DROP)

    async def ping(self) -> None:
        """Raise if Redis does not answer."""
        await self._redis.ping()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()

    async def connect_device(self, app_id: str, registration_id: str, node: str,
                             record: DeviceRecord, ttl_s: int) -> int:
        """See ``Store.connect_device``."""
        epoch = await self._connect(
            keys=[keys.epoch(app_id, registration_id), keys.presence(app_id, registration_id),
                  keys.device(app_id, registration_id)],
            args=[node, ttl_s, encode_internal(record)],
        )
        return int(epoch)

    async def refresh_presence(self, held: Sequence[Held], ttl_s: int) -> list[bool]:
        """See ``Store.refresh_presence``: one pipeline for every connection."""
        if not held:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for h in held:
                await self._refresh(keys=[keys.presence(h.app_id, h.registration_id)],
                                    args=[_presence_value(h.node, h.epoch), ttl_s], client=pipe)
            results = await pipe.execute()
        return [bool(r) for r in results]

    async def drop_presence(self, held: Held) -> bool:
        """See ``Store.drop_presence``."""
        removed = await self._drop(keys=[keys.presence(held.app_id, held.registration_id)],
                                   args=[_presence_value(held.node, held.epoch)])
        return bool(removed)

    async def lookup(self, devices: Sequence[tuple[str, str]]) -> list[DeviceState]:
        """See ``Store.lookup``: two MGETs in one pipeline."""
        if not devices:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.mget([keys.presence(app, rid) for app, rid in devices])
            pipe.mget([keys.device(app, rid) for app, rid in devices])
            presences, records = await pipe.execute()
        return [DeviceState(_parse_presence(p), _parse_record(r))
                for p, r in zip(presences, records, strict=True)]

    async def deliver_to_nodes(self, entries: Sequence[tuple[str, bytes]]) -> None:
        """See ``Store.deliver_to_nodes``: XADD (trimmed) and a TTL per entry, one pipeline."""
        if not entries:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for node, entry in entries:
                key = keys.node_inbox(node)
                pipe.xadd(key, {_FIELD: entry}, maxlen=keys.NODE_INBOX_MAXLEN, approximate=True)
                pipe.expire(key, keys.NODE_INBOX_TTL_S)
            await pipe.execute()

    async def inbox_tail(self, node: str) -> bytes:
        """See ``Store.inbox_tail``."""
        newest = await self._redis.xrevrange(keys.node_inbox(node), count=1)
        return newest[0][0] if newest else b"0-0"

    async def read_inbox(self, node: str, after: bytes, block_ms: int,
                         count: int) -> list[tuple[bytes, bytes]]:
        """See ``Store.read_inbox``."""
        reply = await self._redis.xread({keys.node_inbox(node): after}, count=count,
                                        block=block_ms)
        if not reply:
            return []
        _, entries = reply[0]
        return [(entry_id, fields[_FIELD]) for entry_id, fields in entries]
