"""``StatsStore`` on Redis: per task a hash of counters (``proto.keys.task_stats``), per
delivery a hash of hops (``proto.keys.trace``), per app and day a hash of totals
(``proto.keys.daily``); all hash-tagged by the app."""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis.asyncio as redis

from proto import keys, stats
from proto.events import Event, Stage
from proto.stats import TaskStats, Trace, funnel_of, trace_of

# Count one event. KEYS[1]: the task's counters, KEYS[2]: the day's totals, KEYS[3..]: the
# traces of its devices. ARGV: 1 the hop's trace field, 2 the hop's value, 3 the stage,
# 4 the platform ('' if the event does not say), 5 the trace TTL, 6 the counters' TTL, 7 the
# daily TTL, 8 the per-channel counter ('' for none), 9 the loss counter ('' for none),
# 10 the stage-total counter, 11.. every stage name (for the platform move below).
# The trace is the dedup: a hop counts for a device only when its field is new, and the stage
# totals only when the bare stage field is. Per-platform counters are 'p/<platform>/<stage>'
# (proto.stats.by_platform): a stage counted before the device's platform was known (its
# ``targeted`` event arrived after a later one) counts as 'unknown' and moves when it is.
_FOLD = """
local counters, day = KEYS[1], KEYS[2]
local hop, value, stage, platform = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
for i = 3, #KEYS do
  local t = KEYS[i]
  if platform ~= '' and redis.call('HSETNX', t, 'platform', platform) == 1 then
    for s = 11, #ARGV do
      if redis.call('HEXISTS', t, ARGV[s]) == 1 then
        redis.call('HINCRBY', counters, 'p/unknown/' .. ARGV[s], -1)
        redis.call('HINCRBY', counters, 'p/' .. platform .. '/' .. ARGV[s], 1)
      end
    end
  end
  if redis.call('HSETNX', t, hop, value) == 1 then
    if ARGV[8] ~= '' then redis.call('HINCRBY', counters, ARGV[8], 1) end
    if ARGV[9] ~= '' then redis.call('HINCRBY', counters, ARGV[9], 1) end
    if redis.call('HSETNX', t, stage, '1') == 1 then
      redis.call('HINCRBY', counters, ARGV[10], 1)
      local p = redis.call('HGET', t, 'platform') or 'unknown'
      redis.call('HINCRBY', counters, 'p/' .. p .. '/' .. stage, 1)
      redis.call('HINCRBY', day, stage, 1)
    end
  end
  redis.call('EXPIRE', t, ARGV[5])
end
redis.call('EXPIRE', counters, ARGV[6])
redis.call('EXPIRE', day, ARGV[7])
"""
_STAGES = [stage.value for stage in Stage]
_NO_CHANNEL = (Stage.TARGETED, Stage.FAILED)


def _day(ts_ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts_ms / 1000))


def _text(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


class RedisStats:
    """Redis implementation of ``herald.stats_store.StatsStore`` on a client the caller owns."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._fold = client.register_script(_FOLD)

    async def fold(self, events: Sequence[Event], trace_ttl_s: int) -> None:
        """See ``StatsStore.fold``: one script call per event, one pipeline."""
        async with self._redis.pipeline(transaction=False) as pipe:
            queued = 0
            for event in events:
                devices = event.devices()
                if not event.app_id or not devices:
                    continue
                app, task = event.app_id, event.task_id
                loss = stats.lost(event.channel, event.reason) if event.stage is Stage.FAILED \
                    else ""
                # A device is targeted before it has a channel; losses count by reason.
                per_channel = "" if event.stage in _NO_CHANNEL else stats.by_channel(
                    event.stage, event.channel)
                await self._fold(
                    keys=[keys.task_stats(app, task), keys.daily(app, _day(event.ts_ms)),
                          *(keys.trace(app, task, rid) for rid in devices)],
                    args=[stats.hop(event.stage, event.channel),
                          stats.hop_value(event.ts_ms, event.node, event.reason), event.stage,
                          event.platform, trace_ttl_s, keys.TASK_TTL_S, keys.DAILY_TTL_S,
                          per_channel, loss, stats.total(event.stage), *_STAGES],
                    client=pipe)
                queued += 1
            if queued:
                await pipe.execute()

    async def task_stats(self, app_id: str, task_id: str) -> TaskStats | None:
        """See ``StatsStore.task_stats``."""
        fields = _text(await self._redis.hgetall(keys.task_stats(app_id, task_id)))
        return funnel_of(app_id, task_id, fields) if fields else None

    async def trace(self, app_id: str, task_id: str, registration_id: str) -> Trace | None:
        """See ``StatsStore.trace``."""
        fields = _text(await self._redis.hgetall(keys.trace(app_id, task_id, registration_id)))
        return trace_of(app_id, task_id, registration_id, fields)

    async def daily(self, app_id: str, days: Sequence[str]) -> dict[str, dict[str, int]]:
        """See ``StatsStore.daily``."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(keys.daily(app_id, day))
            found = await pipe.execute()
        return {day: {k.decode(): int(v) for k, v in raw.items()}
                for day, raw in zip(days, found, strict=True) if raw}
