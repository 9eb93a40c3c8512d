"""``Store`` on Redis (redis.asyncio with hiredis). Key layout: ``proto.keys``."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import msgspec
import redis.asyncio as redis

from herald.redis_audience import RedisAudience
from herald.redis_policy import RedisPolicy
from herald.redis_stats import RedisStats
from herald.redis_tasks import RedisTasks
from herald.redis_templates import RedisTemplates
from herald.redis_timers import RedisTimers
from herald.store import DeviceState, Held, Presence, Stored
from proto import keys
from proto.audience import DEFAULT_LIMITS, AudienceLimits
from proto.callbacks import CallbackConfig, decode_config, encode_config
from proto.envelopes import (
    AppRecord,
    DeviceRecord,
    decode_app_record,
    decode_device_record,
    encode_internal,
)
from proto.errors import DecodeError

# A new connection takes the next epoch and overwrites presence in one step, so two racing
# logins of one device end with the higher epoch in place.
_CONNECT = """
local e = redis.call('INCR', KEYS[1])
local previous = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[2], ARGV[1] .. ':' .. e, 'EX', ARGV[2])
return {e, previous}
"""
# Refresh only our own presences (KEYS[i] holding ARGV[i]; the TTL is the last ARGV);
# re-create one that expired while we still hold the socket (a stalled node or a Redis
# restart), but never overwrite a newer connection's. One call for a whole chunk: a gateway
# refreshes every connection it holds every 10 s, and a pipeline of one script call per
# connection cost a third of a busy gateway's CPU in redis-py's per-reply handling.
_REFRESH = """
local ttl = ARGV[#ARGV]
local kept = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v == ARGV[i] then kept[i] = redis.call('EXPIRE', key, ttl)
  elseif not v then redis.call('SET', key, ARGV[i], 'EX', ttl) kept[i] = 1
  else kept[i] = 0 end
end
return kept
"""
_DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Add one message id to a device inbox, evict the oldest beyond the bound, and keep the key as
# long as its longest-lived message. Returns the evicted ids.
_INBOX_ADD = """
redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
local evicted = {}
if over > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[1], over)
  for i = 1, #popped, 2 do evicted[#evicted + 1] = popped[i] end
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return evicted
"""
# Remove token ARGV[1] from vendor-token index KEYS[1] if it still names device ARGV[2].
_UNINDEX_TOKEN = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
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


class RedisStore(RedisAudience, RedisTasks, RedisStats, RedisTimers, RedisPolicy,
                 RedisTemplates):
    """Redis implementation of ``herald.store.Store``; audiences (``RedisAudience``), tasks
    (``RedisTasks``), statistics (``RedisStats``), timers (``RedisTimers``), app policies
    (``RedisPolicy``) and templates (``RedisTemplates``) share its connection pool (and one
    object: each part names its attributes apart)."""

    def __init__(self, url: str, max_connections: int = 64,
                 limits: AudienceLimits = DEFAULT_LIMITS) -> None:
        # A blocking pool makes a burst (a reconnect storm) queue for connections instead of
        # failing once the pool is exhausted.
        pool = redis.BlockingConnectionPool.from_url(url, max_connections=max_connections,
                                                     timeout=30)
        client = redis.Redis(connection_pool=pool)
        RedisAudience.__init__(self, client, limits)
        RedisTasks.__init__(self, client)
        RedisStats.__init__(self, client)
        RedisTimers.__init__(self, client)
        RedisPolicy.__init__(self, client)
        RedisTemplates.__init__(self, client)
        self._connect = self._redis.register_script(_CONNECT)
        self._refresh = self._redis.register_script(_REFRESH)
        self._drop = self._redis.register_script(_DROP)
        self._inbox_add = self._redis.register_script(_INBOX_ADD)
        self._unindex_token = self._redis.register_script(_UNINDEX_TOKEN)

    async def ping(self) -> None:
        """Raise if Redis does not answer."""
        await self._redis.ping()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()

    # Apps and devices

    async def put_app(self, record: AppRecord) -> None:
        """See ``Store.put_app``."""
        await self._redis.set(keys.app(record.app_id), encode_internal(record))

    async def add_app(self, record: AppRecord) -> bool:
        """See ``Store.add_app``: SET NX, so two racing creations cannot both hand out
        credentials."""
        return bool(await self._redis.set(keys.app(record.app_id), encode_internal(record),
                                          nx=True))

    async def get_app(self, app_id: str) -> AppRecord | None:
        """See ``Store.get_app``."""
        raw = await self._redis.get(keys.app(app_id))
        return decode_app_record(raw) if raw is not None else None

    async def put_device(self, app_id: str, registration_id: str, record: DeviceRecord) -> None:
        """See ``Store.put_device``: the record, and the vendor-token index moved from the old
        token to the new one."""
        key = keys.device(app_id, registration_id)
        old = _parse_record(await self._redis.get(key))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(key, encode_internal(record))
            if old is not None and old.vendor_token and (old.vendor, old.vendor_token) != (
                    record.vendor, record.vendor_token):
                await self._unindex_token(keys=[keys.vendor_tokens(app_id, old.vendor)],
                                          args=[old.vendor_token, registration_id], client=pipe)
            if record.vendor and record.vendor_token:
                pipe.hset(keys.vendor_tokens(app_id, record.vendor), record.vendor_token,
                          registration_id)
            await pipe.execute()

    async def vendor_token_devices(self, app_id: str, vendor: str,
                                   tokens: Sequence[str]) -> list[str | None]:
        """See ``Store.vendor_token_devices``: one HMGET, then the hits' records in one
        pipeline; a hit counts only if its record still holds the token."""
        if not tokens:
            return []
        hits = await self._redis.hmget(keys.vendor_tokens(app_id, vendor), list(tokens))
        found = [(i, raw.decode()) for i, raw in enumerate(hits) if raw is not None]
        records = await self._redis.mget([keys.device(app_id, rid) for _, rid in found]) \
            if found else []
        devices: list[str | None] = [None] * len(tokens)
        for (i, rid), raw in zip(found, records, strict=True):
            record = _parse_record(raw)
            if record is not None and (record.vendor, record.vendor_token) == (vendor, tokens[i]):
                devices[i] = rid
        return devices

    async def get_device(self, app_id: str, registration_id: str) -> DeviceRecord | None:
        """See ``Store.get_device``."""
        return _parse_record(await self._redis.get(keys.device(app_id, registration_id)))

    async def bind_account(self, app_id: str, registration_id: str, account: str) -> None:
        """See ``Store.bind_account``."""
        record = await self.get_device(app_id, registration_id) or DeviceRecord()
        async with self._redis.pipeline(transaction=True) as pipe:
            if record.account:
                pipe.srem(keys.account(app_id, record.account), registration_id)
            if account:
                pipe.sadd(keys.account(app_id, account), registration_id)
                pipe.sadd(keys.all_accounts(app_id), account)
            pipe.set(keys.device(app_id, registration_id),
                     encode_internal(_replace(record, account=account)))
            await pipe.execute()

    async def account_devices(self, app_id: str, account: str) -> list[str]:
        """See ``Store.account_devices``."""
        members = await self._redis.smembers(keys.account(app_id, account))
        return sorted(m.decode() for m in members)

    # Presence

    async def connect_device(self, app_id: str, registration_id: str, node: str,
                             ttl_s: int) -> tuple[int, Presence | None]:
        """See ``Store.connect_device``."""
        epoch, previous = await self._connect(
            keys=[keys.epoch(app_id, registration_id), keys.presence(app_id, registration_id)],
            args=[node, ttl_s])
        return int(epoch), _parse_presence(previous or None)

    async def refresh_presence(self, held: Sequence[Held], ttl_s: int) -> list[bool]:
        """See ``Store.refresh_presence``: one script call for every connection (callers
        chunk); like ``lookup``'s MGET, its keys may span Redis Cluster slots."""
        if not held:
            return []
        results = await self._refresh(
            keys=[keys.presence(h.app_id, h.registration_id) for h in held],
            args=[*(_presence_value(h.node, h.epoch) for h in held), ttl_s])
        return [bool(r) for r in results]

    async def drop_presence(self, held: Sequence[Held]) -> None:
        """See ``Store.drop_presence``: one pipeline."""
        if not held:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for h in held:
                await self._drop(keys=[keys.presence(h.app_id, h.registration_id)],
                                 args=[_presence_value(h.node, h.epoch)], client=pipe)
            await pipe.execute()

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

    async def node_beat(self, node: str, ttl_ms: int) -> None:
        """See ``Store.node_beat``."""
        await self._redis.set(keys.node_alive(node), b"1", px=ttl_ms)

    async def node_gone(self, node: str) -> None:
        """See ``Store.node_gone``."""
        await self._redis.delete(keys.node_alive(node))

    async def nodes_alive(self, nodes: Sequence[str]) -> list[bool]:
        """See ``Store.nodes_alive``."""
        if not nodes:
            return []
        return [v is not None for v in await self._redis.mget([keys.node_alive(n)
                                                               for n in nodes])]

    # Node inboxes

    async def send_to_nodes(self, entries: Sequence[tuple[str, bytes]]) -> None:
        """See ``Store.send_to_nodes``: XADD (trimmed) and a TTL per entry, one pipeline."""
        if not entries:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for node, entry in entries:
                pipe.xadd(keys.node_inbox(node), {_FIELD: entry},
                          maxlen=keys.NODE_INBOX_MAXLEN, approximate=True)
            for node in {node for node, _ in entries}:
                pipe.expire(keys.node_inbox(node), keys.NODE_INBOX_TTL_S)
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

    # Offline inboxes

    async def inbox_store(self, app_id: str, msg_id: str, frame: bytes, expires_at_ms: int,
                          registration_ids: Sequence[str], max_len: int) -> list[list[str]]:
        """See ``Store.inbox_store``: the frame once, then one script per device, one pipeline."""
        now_us = time.time_ns() // 1000
        ttl_ms = expires_at_ms - now_us // 1000
        if ttl_ms <= 0 or not registration_ids:
            return [[] for _ in registration_ids]
        holders = keys.message_devices(app_id, msg_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(keys.message(app_id, msg_id), frame, px=ttl_ms)
            pipe.sadd(holders, *registration_ids)
            pipe.pexpire(holders, ttl_ms)
            for rid in registration_ids:
                await self._inbox_add(keys=[keys.inbox(app_id, rid)],
                                      args=[msg_id, now_us, max_len, ttl_ms], client=pipe)
            results = await pipe.execute()
        return [[m.decode() for m in evicted] for evicted in results[3:]]

    async def inbox_purge(self, app_id: str, msg_id: str) -> list[str]:
        """See ``Store.inbox_purge``: the frame goes first, so that no device reads the message
        from its inbox from then on; then its entries in each inbox that held it."""
        holders = keys.message_devices(app_id, msg_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.smembers(holders)
            pipe.delete(keys.message(app_id, msg_id), holders)
            members, _ = await pipe.execute()
        rids = sorted(m.decode() for m in members)
        if not rids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for rid in rids:
                pipe.zrem(keys.inbox(app_id, rid), msg_id)
            removed = await pipe.execute()
        # A device that acknowledged the message took it out of its inbox already.
        return [rid for rid, gone in zip(rids, removed, strict=True) if gone]

    async def inbox_read(self, app_id: str, registration_id: str) -> list[Stored]:
        """See ``Store.inbox_read``."""
        key = keys.inbox(app_id, registration_id)
        members = await self._redis.zrange(key, 0, -1)
        if not members:
            return []
        frames = await self._redis.mget([keys.message(app_id, m.decode()) for m in members])
        expired = [m for m, f in zip(members, frames, strict=True) if f is None]
        if expired:
            await self._redis.zrem(key, *expired)
        return [Stored(m.decode(), f) for m, f in zip(members, frames, strict=True)
                if f is not None]

    async def inbox_remove(self, app_id: str, registration_id: str,
                           msg_ids: Sequence[str]) -> None:
        """See ``Store.inbox_remove``."""
        if msg_ids:
            await self._redis.zrem(keys.inbox(app_id, registration_id), *msg_ids)

    # Vendor credentials, tokens and quotas

    async def put_credentials(self, app_id: str, vendor: str,
                              credentials: Mapping[str, str]) -> None:
        """See ``Store.put_credentials``: one JSON string, replaced whole."""
        await self._redis.set(keys.credentials(app_id, vendor),
                              msgspec.json.encode(dict(credentials)))

    async def get_credentials(self, app_id: str, vendor: str) -> dict[str, str] | None:
        """See ``Store.get_credentials``."""
        raw = await self._redis.get(keys.credentials(app_id, vendor))
        if raw is None:
            return None
        try:
            return msgspec.json.decode(raw, type=dict[str, str])
        except (msgspec.DecodeError, msgspec.ValidationError):
            # The message would quote the stored value: name the problem only.
            raise DecodeError(f"stored {vendor} credentials of {app_id} are not a flat "
                              f"string mapping") from None

    async def put_callback(self, app_id: str, config: CallbackConfig) -> None:
        """See ``Store.put_callback``."""
        await self._redis.set(keys.callback(app_id), encode_config(config))

    async def get_callback(self, app_id: str) -> CallbackConfig | None:
        """See ``Store.get_callback``."""
        raw = await self._redis.get(keys.callback(app_id))
        if raw is None:
            return None
        try:
            return decode_config(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise DecodeError(f"stored callback config of {app_id} is not one") from None

    async def delete_callback(self, app_id: str) -> bool:
        """See ``Store.delete_callback``."""
        return bool(await self._redis.delete(keys.callback(app_id)))

    async def forget_vendor_token(self, app_id: str, registration_id: str, token: str) -> bool:
        """See ``Store.forget_vendor_token``: WATCH, compare, write in MULTI; a record changed
        in between (a new registration) is read again."""
        key = keys.device(app_id, registration_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    record = _parse_record(await pipe.get(key))
                    if record is None or not token or record.vendor_token != token:
                        await pipe.unwatch()
                        return False
                    pipe.multi()
                    pipe.set(key, encode_internal(_replace(record, vendor="", vendor_token="")))
                    await pipe.execute()
                    await self._unindex_token(keys=[keys.vendor_tokens(app_id, record.vendor)],
                                              args=[token, registration_id])
                    return True
                except redis.WatchError:
                    continue

    async def take_daily_quota(self, app_id: str, vendor: str, day: str, amount: int,
                               limit: int) -> bool:
        """See ``Store.take_daily_quota``: one script checks and counts atomically; the
        counter outlives its day by one (a day in any time zone ends within two days)."""
        script = """
        local used = tonumber(redis.call('GET', KEYS[1]) or '0')
        if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return 0 end
        redis.call('INCRBY', KEYS[1], ARGV[1])
        redis.call('EXPIRE', KEYS[1], ARGV[3])
        return 1
        """
        taken = await self._redis.eval(script, 1, keys.daily_quota(app_id, vendor, day),
                                       amount, limit, 2 * 86400)
        return bool(taken)


def _replace(record: DeviceRecord, **changes: str) -> DeviceRecord:
    return msgspec.structs.replace(record, **changes)
