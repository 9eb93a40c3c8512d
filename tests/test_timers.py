"""The timer store on the real Redis: timers are added once, leased to one taker at a time,
taken again when a lease runs out, and forgotten when done; scheduled pushes are listed and
cancelled until their send time."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis.asyncio as redis

from herald.redis_store import RedisStore
from herald.timer_store import CancelOutcome, Timer, schedule_timer_id
from proto import keys
from proto.tasks import TaskState
from tests.harness import REDIS

# A database of their own: every router's timer loop takes whatever is due in database 0,
# and these timers are due long ago, at times the tests choose.
TIMERS_REDIS = urlunsplit(urlsplit(REDIS)._replace(path="/2"))
BASE = 1_000


@pytest.fixture
async def store():
    opened = RedisStore(TIMERS_REDIS)
    yield opened
    await opened.close()


@pytest.fixture
async def client():
    opened = redis.Redis.from_url(TIMERS_REDIS)
    yield opened
    await opened.aclose()


@pytest.fixture
def app_id() -> str:
    return f"app-{uuid.uuid4().hex[:8]}"


def timers(tag: str, count: int, due: int = BASE) -> list[Timer]:
    return [Timer(f"test/{tag}/{i}", due + i, "topic", f"k{i}".encode(), f"v{i}".encode())
            for i in range(count)]


async def mine(store: RedisStore, tag: str, now: int, lease_ms: int = 60_000) -> list[Timer]:
    """The due timers of this test."""
    got = await store.timers_due(now, 10_000, lease_ms)
    return [t for t in got if t.timer_id.startswith(f"test/{tag}/")]


async def forget(store: RedisStore, tag: str, count: int) -> None:
    await store.timers_done([f"test/{tag}/{i}" for i in range(count)])


async def test_due_timers_come_once_in_due_order_with_their_records(store):
    tag = uuid.uuid4().hex
    await store.timers_add(timers(tag, 5))
    try:
        assert await mine(store, tag, BASE + 2) == timers(tag, 3)
        # Leased: not due again until the lease ends.
        assert await mine(store, tag, BASE + 4) == timers(tag, 5)[3:]
        assert await mine(store, tag, BASE + 10) == []
    finally:
        await forget(store, tag, 5)


async def test_adding_a_pending_timer_again_keeps_the_first(store):
    tag = uuid.uuid4().hex
    first = timers(tag, 1)
    await store.timers_add(first)
    await store.timers_add([Timer(first[0].timer_id, BASE + 50, "other", b"x", b"changed")])
    try:
        assert await mine(store, tag, BASE + 100) == first
    finally:
        await forget(store, tag, 1)


async def test_a_lease_that_runs_out_gives_the_timer_to_the_next_taker(store):
    tag = uuid.uuid4().hex
    await store.timers_add(timers(tag, 1))
    try:
        assert len(await mine(store, tag, BASE, lease_ms=1_000)) == 1
        assert await mine(store, tag, BASE + 999) == []
        # The taker died: a second later the timer is due again.
        assert [t.timer_id for t in await mine(store, tag, BASE + 1_000)] == [f"test/{tag}/0"]
    finally:
        await forget(store, tag, 1)


async def test_done_timers_are_gone(store, client):
    tag = uuid.uuid4().hex
    await store.timers_add(timers(tag, 2))
    await mine(store, tag, BASE + 1, lease_ms=0)
    await store.timers_done([f"test/{tag}/0", f"test/{tag}/1"])
    assert await mine(store, tag, BASE + 100) == []
    assert not await client.exists(keys.timer(f"test/{tag}/0"))


async def test_concurrent_takers_never_share_a_timer(store):
    tag = uuid.uuid4().hex
    await store.timers_add(timers(tag, 200))
    try:
        takers = [RedisStore(TIMERS_REDIS) for _ in range(4)]
        got = await asyncio.gather(*(mine(taker, tag, BASE + 500) for taker in takers))
        for taker in takers:
            await taker.close()
        ids = [t.timer_id for batch in got for t in batch]
        assert sorted(ids) == sorted(t.timer_id for t in timers(tag, 200))
    finally:
        await forget(store, tag, 200)


async def test_a_scheduled_push_is_listed_until_cancelled(store, app_id):
    task = f"sched-{uuid.uuid4().hex[:8]}"
    timer = Timer(schedule_timer_id(app_id, task), BASE + 10, "push.requests", b"k",
                  b'{"the": "request"}')
    await store.schedule_push(app_id, task, timer)
    await store.schedule_push(app_id, task, timer)
    listed = await store.scheduled_pushes(app_id, 10)
    assert [(s.task_id, s.send_at_ms, s.request) for s in listed] == [
        (task, BASE + 10, b'{"the": "request"}')]
    status = await store.task_status(app_id, task)
    assert status is not None and status.state is TaskState.SCHEDULED
    assert status.scheduled_ms == BASE + 10
    assert await store.cancel_scheduled(app_id, task, BASE) is CancelOutcome.CANCELLED
    assert await store.scheduled_pushes(app_id, 10) == []
    status = await store.task_status(app_id, task)
    assert status is not None and status.state is TaskState.STOPPED
    assert await store.cancel_scheduled(app_id, task, BASE) is CancelOutcome.STOPPED
    assert await mine(store, "never", BASE + 100) == []


async def test_cancel_after_the_send_time_is_too_late_and_unknown_tasks_are_unknown(store, app_id):
    task = f"sched-{uuid.uuid4().hex[:8]}"
    timer_id = schedule_timer_id(app_id, task)
    await store.schedule_push(app_id, task,
                              Timer(timer_id, BASE, "push.requests", b"k", b"{}"))
    due = [t for t in await store.timers_due(BASE, 10_000, 60_000) if t.timer_id == timer_id]
    assert len(due) == 1
    await store.timers_done([timer_id])
    # Published: no longer listed, and too late to cancel.
    assert await store.scheduled_pushes(app_id, 10) == []
    assert await store.cancel_scheduled(app_id, task, BASE) is CancelOutcome.SENT
    assert await store.cancel_scheduled(app_id, "no-such-task", BASE) is CancelOutcome.UNKNOWN
    assert await store.cancel_scheduled(f"other-{uuid.uuid4().hex[:6]}", task,
                                        BASE) is CancelOutcome.UNKNOWN
