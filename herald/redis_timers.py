"""``TimerStore`` on Redis: one sorted set of timer ids by due time (``proto.keys.timers``),
one hash per timer (``proto.keys.timer``), and per app a sorted set of its scheduled tasks
(``proto.keys.scheduled``). A lease is the timer's score moved to the lease's end."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as redis

from herald.timer_store import CancelOutcome, ScheduledPush, Timer, schedule_timer_id
from proto import keys, tasks
from proto.events import now_ms

_TIMER_PREFIX = keys.timer("")

# Add timers. KEYS[1]: the timer set. ARGV[1]: the timer key prefix; then per timer seven
# values: id, due, topic, key, value, index ('' = none), member. A pending id keeps its record.
_ADD = """
for i = 2, #ARGV, 7 do
  local id = ARGV[i]
  if redis.call('ZADD', KEYS[1], 'NX', ARGV[i + 1], id) == 1 then
    local h = ARGV[1] .. id
    redis.call('HSET', h, 't', ARGV[i + 2], 'k', ARGV[i + 3], 'v', ARGV[i + 4])
    if ARGV[i + 5] ~= '' then
      redis.call('HSET', h, 'i', ARGV[i + 5], 'm', ARGV[i + 6])
      redis.call('ZADD', ARGV[i + 5], ARGV[i + 1], ARGV[i + 6])
    end
  end
end
"""
# Lease due timers. KEYS[1]: the timer set. ARGV: now, limit, lease ms, timer key prefix.
# Returns id, due, topic, key, value per timer; an id without a record is dropped.
_DUE = """
local now = tonumber(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0,
                       tonumber(ARGV[2]))
local out = {}
for i = 1, #ids, 2 do
  local id = ids[i]
  local v = redis.call('HMGET', ARGV[4] .. id, 't', 'k', 'v')
  if v[1] then
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[3]), id)
    out[#out + 1] = id
    out[#out + 1] = ids[i + 1]
    out[#out + 1] = v[1]
    out[#out + 1] = v[2]
    out[#out + 1] = v[3]
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"""
# Forget published timers. KEYS[1]: the timer set. ARGV[1]: the prefix, then the ids.
_DONE = """
for i = 2, #ARGV, 1 do
  local h = ARGV[1] .. ARGV[i]
  local index = redis.call('HMGET', h, 'i', 'm')
  if index[1] then redis.call('ZREM', index[1], index[2]) end
  redis.call('DEL', h)
  redis.call('ZREM', KEYS[1], ARGV[i])
end
"""
# Cancel a scheduled push. KEYS: the timer set, the timer, the app's schedule, the task.
# ARGV: timer id, task id, now.
_CANCEL = """
if redis.call('HEXISTS', KEYS[4], 'stopped_ms') == 1 then return 'stopped' end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  if redis.call('HEXISTS', KEYS[4], 'scheduled_ms') == 1 then return 'sent' end
  return 'unknown'
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('HSET', KEYS[4], 'stopped_ms', ARGV[3])
return 'cancelled'
"""


class RedisTimers:
    """Redis implementation of ``herald.timer_store.TimerStore`` on a client the caller owns."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._timer_add = client.register_script(_ADD)
        self._timer_due = client.register_script(_DUE)
        self._timer_done = client.register_script(_DONE)
        self._timer_cancel = client.register_script(_CANCEL)

    async def timers_add(self, timers: Sequence[Timer]) -> None:
        """See ``TimerStore.timers_add``: one script call."""
        await self._add_timers([(t, "", "") for t in timers])

    async def _add_timers(self, timers: Sequence[tuple[Timer, str, str]]) -> None:
        if not timers:
            return
        args: list[str | bytes | int] = [_TIMER_PREFIX]
        for t, index, member in timers:
            args += [t.timer_id, t.due_ms, t.topic, t.key, t.value, index, member]
        await self._timer_add(keys=[keys.timers()], args=args)

    async def timers_due(self, now_ms: int, limit: int, lease_ms: int) -> list[Timer]:
        """See ``TimerStore.timers_due``: one script call."""
        out = await self._timer_due(keys=[keys.timers()],
                                    args=[now_ms, limit, lease_ms, _TIMER_PREFIX])
        return [Timer(out[i].decode(), int(float(out[i + 1])), out[i + 2].decode(), out[i + 3],
                      out[i + 4]) for i in range(0, len(out), 5)]

    async def timers_done(self, timer_ids: Sequence[str]) -> None:
        """See ``TimerStore.timers_done``: one script call."""
        if timer_ids:
            await self._timer_done(keys=[keys.timers()], args=[_TIMER_PREFIX, *timer_ids])

    async def schedule_push(self, app_id: str, task_id: str, timer: Timer) -> None:
        """See ``TimerStore.schedule_push``: the task record outlives the send time by the
        usual task TTL; the task is listed among the app's tasks from now."""
        task = keys.task(app_id, task_id)
        now = now_ms()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hsetnx(task, tasks.SCHEDULED, timer.due_ms)
            pipe.expire(task, keys.TASK_TTL_S + max(0, timer.due_ms - now) // 1000)
            pipe.zadd(keys.tasks(app_id), {task_id: now}, nx=True)
            await pipe.execute()
        await self._add_timers([(timer, keys.scheduled(app_id), task_id)])

    async def scheduled_pushes(self, app_id: str, limit: int) -> list[ScheduledPush]:
        """See ``TimerStore.scheduled_pushes``: two round trips."""
        entries = await self._redis.zrange(keys.scheduled(app_id), 0, limit - 1,
                                           withscores=True)
        if not entries:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for task_id, _ in entries:
                pipe.hget(keys.timer(schedule_timer_id(app_id, task_id.decode())), "v")
            values = await pipe.execute()
        return [ScheduledPush(task_id.decode(), int(score), value)
                for (task_id, score), value in zip(entries, values, strict=True)
                if value is not None]

    async def cancel_scheduled(self, app_id: str, task_id: str, now_ms: int) -> CancelOutcome:
        """See ``TimerStore.cancel_scheduled``: one script decides and writes."""
        timer_id = schedule_timer_id(app_id, task_id)
        outcome = await self._timer_cancel(
            keys=[keys.timers(), keys.timer(timer_id), keys.scheduled(app_id),
                  keys.task(app_id, task_id)],
            args=[timer_id, task_id, now_ms])
        return CancelOutcome(outcome.decode())
