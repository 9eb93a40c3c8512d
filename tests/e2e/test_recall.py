"""Recall end to end, through Kafka and the real roles: after delivery (online, offline inbox,
vendor) and in the middle of a fan-out; the task's stats count what was recalled per channel."""

from __future__ import annotations

import json

import pytest

from herald.device import Device
from herald.redis_store import RedisStore
from herald.task_store import RecallOutcome
from proto import topics
from proto.envelopes import RecallRequest, encode_recall_request
from proto.events import now_ms
from proto.tasks import TaskState
from tests.e2e import stack
from tests.e2e.test_fanout import populate
from tests.e2e.test_stats import stats_role
from tests.harness import (
    REDIS,
    caught_up,
    commit_offsets,
    end_offsets,
    eventually,
    eventually_async,
    free_port,
    metric,
    scrape,
)

DAY_MS = 24 * 3600 * 1000


@pytest.fixture
async def store():
    store = RedisStore(REDIS)
    yield store
    await store.close()


async def recall(producer, store: RedisStore, app_id: str, task: str) -> None:
    """What the API does: mark the task recalled within the window, publish the request."""
    assert await store.recall_task(app_id, task, now_ms(), DAY_MS) is RecallOutcome.RECALLED
    await producer.send_and_wait(topics.RECALLS, encode_recall_request(
        RecallRequest(task_id=task, app_id=app_id)), key=task.encode())


async def test_recall_after_delivery_reaches_every_channel(logdir, uid, app, sandbox, producer,
                                                           store):
    await commit_offsets(topics.STATS_GROUP, topics.EVENTS, await end_offsets(topics.EVENTS))
    ports = stack.ports()
    roles = [stack.gateway(logdir, f"node-{uid}", ports), stack.router(logdir, ports),
             stack.vendor(logdir, ports, sandbox.url), stats_role(logdir, free_port())]
    url = f"ws://127.0.0.1:{ports.gateway}"
    online = Device(app.app_id, app.client_key, platform="ios")
    waiting = Device(app.app_id, app.client_key)
    vendor = Device(app.app_id, app.client_key, vendor="sandbox", vendor_token=f"v-{uid}")
    task = f"recall-{uid}"
    try:
        await roles[0].wait_log("gateway listening")
        for role in roles[1:]:
            await role.wait_log("partitions assigned")
        for device in (waiting, vendor):
            await device.connect(url)
            await device.close()
        await online.connect(url)

        async def offline_now() -> bool:
            states = await store.lookup([(app.app_id, d.registration_id)
                                         for d in (waiting, vendor)])
            return all(s.presence is None for s in states)
        await eventually_async(offline_now, 10, "two devices to be offline")

        # PushFlag 0 with a lifetime: online, then the vendor, else the inbox.
        request = {"task_id": task, "app_id": app.app_id, "lifetime_s": 3600,
                   "registration_ids": [d.registration_id for d in (online, waiting, vendor)],
                   "message": {"title": "take me back"}}
        await producer.send_and_wait(topics.REQUESTS, json.dumps(request).encode(),
                                     key=task.encode())
        await online.wait_for(1, 20)
        await eventually(lambda: f"v-{uid}" in sandbox.tokens(), 20, "the vendor send")

        async def stored() -> bool:
            return [s.msg_id for s in await store.inbox_read(
                app.app_id, waiting.registration_id)] == [task]
        await eventually_async(stored, 20, "the inbox copy")

        # The router records the task after its hand-offs are stored (inbox included): the
        # API recalls only a task it knows.
        async def known() -> bool:
            return await store.task_status(app.app_id, task) is not None
        await eventually_async(known, 20, "the task's record")

        await recall(producer, store, app.app_id, task)
        await eventually(lambda: online.recalled == [task], 20, "the RECALL frame")
        revoke = await eventually(lambda: [r for r in sandbox.requests
                                           if r.get("revoke") and r["task_id"] == task], 20,
                                  "the vendor revoke")
        assert revoke[0]["tokens"] == [f"v-{uid}"] and revoke[0]["msg_id"] == task

        async def emptied() -> bool:
            return await store.inbox_read(app.app_id, waiting.registration_id) == []
        await eventually_async(emptied, 20, "the inbox to be emptied")

        async def counted():
            got = await store.task_stats(app.app_id, task)
            return got if got is not None and got.recalled == 3 else None
        stats = await eventually_async(counted, 30, "three devices counted recalled")
        assert stats.recalled_by_channel == {"inbox": 1, "online": 1, "sandbox": 1}
        assert stats.funnel.sent == 2 and stats.funnel.delivered == 1
        status = await store.task_status(app.app_id, task)
        assert status is not None and status.state is TaskState.RECALLED
        # A second recall, and one past the window, are refused.
        assert await store.recall_task(app.app_id, task, now_ms(), DAY_MS) is \
            RecallOutcome.RECALLED_ALREADY
        await eventually_async(lambda: caught_up(topics.STATS_GROUP, topics.EVENTS), 30,
                               "the stats consumer to catch up")
    finally:
        await online.close()
        for role in roles:
            await role.stop()


async def test_recall_mid_fanout_routes_no_further_shard(logdir, uid, app, producer, store,
                                                         redis_client):
    devices = 20_000
    await populate(redis_client, app.app_id, devices)
    ports = stack.ports()
    router = stack.router(logdir, ports, HERALD_FANOUT_SHARD="500", HERALD_FANOUT_BATCH="1")
    task = f"midway-{uid}"
    try:
        await router.wait_log("partitions assigned")
        request = {"task_id": task, "app_id": app.app_id, "audience": {"all": True},
                   "push_flag": 1, "message": {"title": "halfway"}}
        await producer.send_and_wait(topics.REQUESTS, json.dumps(request).encode(),
                                     key=task.encode())

        async def under_way() -> bool:
            got = await store.task_status(app.app_id, task)
            return got is not None and got.shards_done >= 2
        await eventually_async(under_way, 30, "two shards routed")
        await recall(producer, store, app.app_id, task)

        def dropped() -> float:
            return metric(scrape(ports.router_metrics), "herald_router_fanout_total",
                          kind="shard", result="stopped")

        async def settled() -> bool:
            got = await store.task_status(app.app_id, task)
            assert got is not None
            return (got.planned or metric(scrape(ports.router_metrics),
                                          "herald_router_fanout_total", kind="step",
                                          result="stopped") >= 1) \
                and got.shards_done + dropped() >= got.shards_planned
        await eventually_async(settled, 60, "every shard of the recalled task consumed")
        final = await store.task_status(app.app_id, task)
        assert final is not None and final.state is TaskState.RECALLED
        assert 1000 <= sum(final.decisions.values()) < devices
        assert dropped() > 0
        assert metric(scrape(ports.router_metrics), "herald_router_recalls_total",
                      result="started") == 1
    finally:
        await router.stop()
