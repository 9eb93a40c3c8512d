"""``TaskStore`` on Redis: per task one hash (``proto.keys.task``, fields in ``proto.tasks``)
and one set of the shards routed (``proto.keys.task_shards``), both hash-tagged by the app."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as redis

from herald.task_store import Progress, RecallOutcome, TaskMarks
from proto import keys, tasks
from proto.tasks import TaskStatus, status_of

# Apply one Progress. KEYS[1]: the task hash, KEYS[2]: its routed shards, KEYS[3]: the app's
# task index (a task is listed from the time it started; entries older than the TTL go).
# ARGV: now, audience ('' = not starting), step ('' = none), shards, devices, last (0/1),
# shard ('' = none), TTL, the task id, the target, the shards the shard held back for later,
# then decision name and count pairs. A step
# counts only past the last one counted, a shard's decisions only the first time the shard is
# added: a replayed batch changes nothing.
_PROGRESS = """
local t = KEYS[1]
if ARGV[2] ~= '' then
  redis.call('HSETNX', t, 'started_ms', ARGV[1])
  redis.call('HSETNX', t, 'audience', ARGV[2])
  redis.call('HSETNX', t, 'target', ARGV[10])
  redis.call('ZADD', KEYS[3], 'NX', ARGV[1], ARGV[9])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[1] - ARGV[8] * 1000)
end
if ARGV[3] ~= '' then
  local step = tonumber(ARGV[3])
  if step > tonumber(redis.call('HGET', t, 'step') or '-1') then
    redis.call('HSET', t, 'step', step)
    redis.call('HINCRBY', t, 'shards', ARGV[4])
    redis.call('HINCRBY', t, 'devices', ARGV[5])
    if ARGV[6] == '1' then redis.call('HSET', t, 'planned', '1') end
  end
end
if ARGV[7] ~= '' and redis.call('SADD', KEYS[2], ARGV[7]) == 1 then
  redis.call('HINCRBY', t, 'shards', ARGV[11])
  for i = 12, #ARGV, 2 do redis.call('HINCRBY', t, 'n:' .. ARGV[i], ARGV[i + 1]) end
end
redis.call('EXPIRE', t, ARGV[8])
redis.call('EXPIRE', KEYS[2], ARGV[8])
"""
# Stop a task that exists and is neither stopped nor done (planned, every shard routed).
_STOP = """
local t = KEYS[1]
if redis.call('EXISTS', t) == 0 or redis.call('HEXISTS', t, 'stopped_ms') == 1 then return end
local planned = redis.call('HGET', t, 'planned') == '1'
local shards = tonumber(redis.call('HGET', t, 'shards') or '0')
if planned and redis.call('SCARD', KEYS[2]) >= shards then return end
redis.call('HSET', t, 'stopped_ms', ARGV[1])
"""
# Delete KEYS[1] if it still holds ARGV[1].
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
"""
# Mark a task recalled unless it is unknown, recalled already, or started (accepted, if not
# started yet) more than ARGV[2] ms before ARGV[1].
_RECALL = """
local t = KEYS[1]
if redis.call('EXISTS', t) == 0 then return 'unknown' end
if redis.call('HEXISTS', t, 'recalled_ms') == 1 then return 'recalled_already' end
local since = redis.call('HGET', t, 'started_ms') or redis.call('HGET', t, 'accepted_ms')
if since and tonumber(ARGV[1]) - tonumber(since) > tonumber(ARGV[2]) then return 'too_late' end
redis.call('HSET', t, 'recalled_ms', ARGV[1])
return 'recalled'
"""


def _fields(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


class RedisTasks:
    """Redis implementation of ``herald.task_store.TaskStore`` on a client the caller owns."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._progress = client.register_script(_PROGRESS)
        self._stop = client.register_script(_STOP)
        self._recall = client.register_script(_RECALL)
        self._release = client.register_script(_RELEASE)

    async def accept_task(self, app_id: str, task_id: str, now_ms: int) -> None:
        """See ``TaskStore.accept_task``."""
        key = keys.task(app_id, task_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, tasks.ACCEPTED, now_ms)
            pipe.expire(key, keys.TASK_TTL_S)
            pipe.zadd(keys.tasks(app_id), {task_id: now_ms}, nx=True)
            await pipe.execute()

    async def task_marks(self, queries: Sequence[tuple[str, str, str]]) -> list[TaskMarks]:
        """See ``TaskStore.task_marks``: one HMGET (and SISMEMBER for a shard) per query."""
        if not queries:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for app_id, task_id, shard in queries:
                pipe.hmget(keys.task(app_id, task_id),
                           [tasks.STARTED, tasks.STOPPED, tasks.STEP, tasks.RECALLED])
                if shard:
                    pipe.sismember(keys.task_shards(app_id, task_id), shard)
            replies = iter(await pipe.execute())
        marks = []
        for _, _, shard in queries:
            started, stopped, step, recalled = next(replies)
            done = bool(next(replies)) if shard else False
            marks.append(TaskMarks(started=started is not None,
                                   stopped=stopped is not None or recalled is not None,
                                   step=int(step) if step is not None else -1, shard_done=done))
        return marks

    async def record_progress(self, progress: Sequence[Progress], now_ms: int) -> None:
        """See ``TaskStore.record_progress``: one script call per record, one pipeline."""
        if not progress:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for p in progress:
                pairs = [part for item in p.decisions.items() for part in item]
                await self._progress(
                    keys=[keys.task(p.app_id, p.task_id), keys.task_shards(p.app_id, p.task_id),
                          keys.tasks(p.app_id)],
                    args=[now_ms, p.audience, "" if p.step is None else p.step, p.shards,
                          p.devices, int(p.last), p.shard, keys.TASK_TTL_S, p.task_id, p.target,
                          p.held, *pairs],
                    client=pipe)
            await pipe.execute()

    async def stop_task(self, app_id: str, task_id: str, now_ms: int) -> TaskStatus | None:
        """See ``TaskStore.stop_task``: one script decides and writes."""
        await self._stop(keys=[keys.task(app_id, task_id), keys.task_shards(app_id, task_id)],
                         args=[now_ms])
        return await self.task_status(app_id, task_id)

    async def recall_task(self, app_id: str, task_id: str, now_ms: int,
                          window_ms: int) -> RecallOutcome:
        """See ``TaskStore.recall_task``: one script decides and writes."""
        outcome = await self._recall(keys=[keys.task(app_id, task_id)], args=[now_ms, window_ms])
        return RecallOutcome(outcome.decode())

    async def forget_recall(self, app_id: str, task_id: str) -> None:
        """See ``TaskStore.forget_recall``."""
        await self._redis.hdel(keys.task(app_id, task_id), tasks.RECALLED)

    async def reject_task(self, app_id: str, task_id: str, reason: str, now_ms: int) -> None:
        """See ``TaskStore.reject_task``."""
        key = keys.task(app_id, task_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, tasks.REJECTED, now_ms)
            pipe.hsetnx(key, tasks.REASON, reason)
            pipe.expire(key, keys.TASK_TTL_S)
            pipe.zadd(keys.tasks(app_id), {task_id: now_ms}, nx=True)
            await pipe.execute()

    async def claim_idempotency(self, claims: Sequence[tuple[str, str, str]],
                                ttl_s: int) -> list[str]:
        """See ``TaskStore.claim_idempotency``: SET NX then GET per claim, one pipeline."""
        if not claims:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for app_id, key, task_id in claims:
                pipe.set(keys.idempotency(app_id, key), task_id, nx=True, ex=ttl_s)
                pipe.get(keys.idempotency(app_id, key))
            replies = await pipe.execute()
        return [holder.decode() for holder in replies[1::2]]

    async def release_idempotency(self, app_id: str, key: str, task_id: str) -> None:
        """See ``TaskStore.release_idempotency``."""
        await self._release(keys=[keys.idempotency(app_id, key)], args=[task_id])

    async def task_target(self, app_id: str, task_id: str) -> str | None:
        """See ``TaskStore.task_target``."""
        raw = await self._redis.hget(keys.task(app_id, task_id), tasks.TARGET)
        return raw.decode() if raw is not None else None

    async def list_tasks(self, app_id: str, since_ms: int, until_ms: int,
                         limit: int) -> list[TaskStatus]:
        """See ``TaskStore.list_tasks``: the index, then every task's record, in one pipeline
        each."""
        ids = await self._redis.zrevrangebyscore(keys.tasks(app_id), until_ms, since_ms,
                                                 start=0, num=limit)
        async with self._redis.pipeline(transaction=False) as pipe:
            for raw in ids:
                pipe.hgetall(keys.task(app_id, raw.decode()))
                pipe.scard(keys.task_shards(app_id, raw.decode()))
            found = await pipe.execute() if ids else []
        listed = [status_of(app_id, raw.decode(), _fields(found[2 * i]), found[2 * i + 1])
                  for i, raw in enumerate(ids)]
        return [s for s in listed if s is not None]

    async def task_status(self, app_id: str, task_id: str) -> TaskStatus | None:
        """See ``TaskStore.task_status``."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.task(app_id, task_id))
            pipe.scard(keys.task_shards(app_id, task_id))
            fields, done = await pipe.execute()
        return status_of(app_id, task_id, _fields(fields), done)

