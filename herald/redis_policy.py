"""``PolicyStore`` on Redis: per app its policy as JSON (``proto.keys.policy``) and per cap
subject a sorted set of task ids by the time they were counted (``proto.keys.cap``), hash-tagged
by the app, so one claim's keys share a Cluster slot."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as redis

from herald.policy_store import CapTake
from proto import keys
from proto.errors import DecodeError
from proto.policy import AppPolicy, decode_policy, encode_policy

# One claim on the cap. KEYS: the subjects' windows. ARGV: task id, count, period ms, now.
# Entries at least a period old leave first (an entry counts while now - t < period); a task
# counted already is allowed again without counting twice. Returns 1 (allowed) or 0 per key.
_TAKE = """
local task, count, period, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - period)
  if redis.call('ZSCORE', key, task) then
    out[i] = 1
  elseif redis.call('ZCARD', key) < count then
    redis.call('ZADD', key, now, task)
    out[i] = 1
  else
    out[i] = 0
  end
  if redis.call('EXISTS', key) == 1 then redis.call('PEXPIRE', key, period) end
end
return out
"""


class RedisPolicy:
    """Redis implementation of ``herald.policy_store.PolicyStore`` on a client the caller
    owns."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._take = client.register_script(_TAKE)

    async def put_policy(self, app_id: str, policy: AppPolicy) -> None:
        """See ``PolicyStore.put_policy``."""
        await self._redis.set(keys.policy(app_id), encode_policy(policy))

    async def get_policy(self, app_id: str) -> AppPolicy | None:
        """See ``PolicyStore.get_policy``."""
        raw = await self._redis.get(keys.policy(app_id))
        return None if raw is None else decode_policy(raw)

    async def delete_policy(self, app_id: str) -> bool:
        """See ``PolicyStore.delete_policy``."""
        return bool(await self._redis.delete(keys.policy(app_id)))

    async def get_policies(self, app_ids: Sequence[str]) -> list[AppPolicy | None]:
        """See ``PolicyStore.get_policies``: a pipeline of GETs (the apps' keys live in
        different Cluster slots)."""
        if not app_ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for app_id in app_ids:
                pipe.get(keys.policy(app_id))
            raws = await pipe.execute()
        policies: list[AppPolicy | None] = []
        for raw in raws:
            try:
                policies.append(None if raw is None else decode_policy(raw))
            except DecodeError:
                policies.append(None)
        return policies

    async def cap_take(self, app_id: str, task_id: str, accounts: Sequence[str], count: int,
                       period_s: int, now_ms: int) -> list[bool]:
        """See ``PolicyStore.cap_take``."""
        (taken,) = await self.cap_take_many(
            [CapTake(app_id, task_id, accounts, count, period_s, now_ms)])
        return taken

    async def cap_take_many(self, takes: Sequence[CapTake]) -> list[list[bool]]:
        """See ``PolicyStore.cap_take_many``: one script call per claim, pipelined, so the
        claims apply in order."""
        claims = [take for take in takes if take.subjects]
        if not claims:
            return [[] for _ in takes]
        async with self._redis.pipeline(transaction=False) as pipe:
            for take in claims:
                await self._take(keys=[keys.cap(take.app_id, s) for s in take.subjects],
                                 args=[take.task_id, take.count, take.period_s * 1000,
                                       take.now_ms], client=pipe)
            replies = iter(await pipe.execute())
        return [[bool(flag) for flag in next(replies)] if take.subjects else []
                for take in takes]
