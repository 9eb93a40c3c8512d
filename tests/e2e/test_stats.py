"""Push statistics end to end: one all-users push to a mixed audience (online devices that ack,
click or stay silent, offline devices with a working, an invalid or no vendor channel) through
the real gateway, router, sandbox sender and stats consumer; every counter and rate checked
against the known truth, exactly; the same counters after the stats consumer re-reads the
events from earlier offsets, and after an event arrives twice."""

from __future__ import annotations

import json
import time

import pytest

from herald.device import Device
from herald.redis_store import RedisStore
from proto import topics
from proto.events import Stage, decode_event
from proto.stats import Funnel, TaskStats
from proto.tasks import TaskState
from tests.e2e import stack
from tests.harness import (
    REDIS,
    Role,
    TopicWatcher,
    caught_up,
    commit_offsets,
    end_offsets,
    eventually_async,
    free_port,
    metric,
    scrape,
)


def funnel(targeted: int, sendable: int, sent: int, delivered: int, clicked: int) -> Funnel:
    def rate(part: int, whole: int) -> float:
        return round(part / whole, 6) if whole else 0.0

    return Funnel(targeted=targeted, sendable=sendable, sent=sent, delivered=delivered,
                  clicked=clicked, send_rate=rate(sent, sendable),
                  delivery_rate=rate(delivered, sent), click_rate=rate(clicked, delivered))


def expected(app_id: str, task: str) -> TaskStats:
    """The truth for the audience of ``test_a_mixed_audience_counts_exactly``."""
    return TaskStats(
        task_id=task, app_id=app_id,
        # 8 devices; 6 reachable (3 online, 3 with a sandbox token); 5 sent (the 3 online,
        # the 2 valid tokens; the silent one again by its vendor, once in the total); the 2
        # that acked; the 1 that clicked.
        funnel=funnel(8, 6, 5, 2, 1),
        channels={"online": funnel(0, 3, 3, 2, 1), "sandbox": funnel(0, 3, 3, 0, 0)},
        platforms={"android": funnel(5, 3, 3, 0, 0), "ios": funnel(3, 3, 2, 2, 1)},
        lost={"no_channel": 2, "token_invalid": 1},
        losses={"routing": {"no_channel": 2}, "sandbox": {"token_invalid": 1}})


def stats_role(logdir, port: int, name: str = "stats") -> Role:
    return Role(["stats"], {"HERALD_METRICS_PORT": str(port)}, logdir / f"{name}.log")


@pytest.fixture
async def store():
    store = RedisStore(REDIS)
    yield store
    await store.close()


async def test_a_mixed_audience_counts_exactly(logdir, uid, app, sandbox, producer, store):
    # The stats group starts where the topic ends now: earlier tests' events are not ours.
    start = await end_offsets(topics.EVENTS)
    await commit_offsets(topics.STATS_GROUP, topics.EVENTS, start)
    events = await TopicWatcher(topics.EVENTS).start()
    ports = stack.ports()
    stats_port = free_port()
    roles = [stack.gateway(logdir, f"node-{uid}", ports, HERALD_ACK_TIMEOUT_S="1"),
             stack.router(logdir, ports), stack.vendor(logdir, ports, sandbox.url),
             stats_role(logdir, stats_port)]
    url = f"ws://127.0.0.1:{ports.gateway}"
    task = f"mixed-{uid}"
    online = []
    try:
        await roles[0].wait_log("gateway listening")
        for role in roles[1:]:
            await role.wait_log("partitions assigned")

        def device(platform: str, vendor: str = "", token: str = "",
                   acking: bool = True) -> Device:
            return Device(app.app_id, app.client_key, platform=platform, vendor=vendor,
                          vendor_token=token, acking=acking)

        clicker, acker = device("ios"), device("ios")
        silent = device("android", "sandbox", f"ok-s-{uid}", acking=False)
        offline = [device("android", "sandbox", f"ok-1-{uid}"),
                   device("android", "sandbox", f"ok-2-{uid}"),
                   device("ios", "sandbox", f"bad-{uid}"),
                   device("android"), device("android")]
        sandbox.invalid_tokens.add(f"bad-{uid}")
        for d in offline:
            await d.connect(url)
            await d.close()
        for d in (clicker, acker, silent):
            await d.connect(url)
            online.append(d)

        async def offline_now() -> bool:
            states = await store.lookup([(app.app_id, d.registration_id) for d in offline])
            return all(s.presence is None for s in states)
        await eventually_async(offline_now, 10, "the offline devices to be offline")

        request = {"task_id": task, "app_id": app.app_id, "audience": {"all": True},
                   "message": {"title": "everyone"}}
        await producer.send_and_wait(topics.REQUESTS, json.dumps(request).encode(),
                                     key=task.encode())
        (shown,) = await clicker.wait_for(1, 20)
        await clicker.click(shown.mid)
        truth = expected(app.app_id, task)

        async def counted() -> TaskStats | None:
            got = await store.task_stats(app.app_id, task)
            return got if got == truth else None
        await eventually_async(counted, 30, "the task's statistics")
        status = await store.task_status(app.app_id, task)
        assert status is not None and status.state is TaskState.DONE

        # The message link of the silent device: every hop, in order.
        trace = await store.trace(app.app_id, task, silent.registration_id)
        assert trace is not None and trace.platform == "android"
        assert [(h.stage, h.channel) for h in trace.hops] == [
            ("targeted", "routing"), ("sendable", "online"), ("sent", "online"),
            ("sent", "sandbox")]
        assert trace.hops[2].node == f"node-{uid}"
        assert [h.ts_ms for h in trace.hops] == sorted(h.ts_ms for h in trace.hops)
        lost = await store.trace(app.app_id, task, offline[2].registration_id)
        assert lost is not None and lost.hops[-1].reason == "token_invalid"

        # Daily totals of the app (fresh: this task is all it has) and its push records.
        today = time.strftime("%Y-%m-%d", time.gmtime())
        days = await store.daily(app.app_id, [today])
        assert days == {today: {"targeted": 8, "sendable": 6, "sent": 5, "delivered": 2,
                                "clicked": 1, "failed": 3}}
        listed = await store.list_tasks(app.app_id, 0, 2**62, 10)
        assert [(t.task_id, t.state) for t in listed] == [(task, TaskState.DONE)]

        # The same event twice, and a record that is no event: nothing changes, the bad one
        # is dead-lettered.
        await eventually_async(lambda: caught_up(topics.STATS_GROUP, topics.EVENTS), 30,
                               "the stats group to catch up")
        delivered = next(r for r in events.records if r.key == task.encode()
                         and decode_event(r.value).stage is Stage.DELIVERED)
        await producer.send_and_wait(topics.EVENTS, delivered.value, key=delivered.key)
        await producer.send_and_wait(topics.EVENTS, b"{not an event", key=task.encode())
        await eventually_async(lambda: caught_up(topics.STATS_GROUP, topics.EVENTS), 30,
                               "the stats group to read them")
        assert await store.task_stats(app.app_id, task) == truth
        assert metric(scrape(stats_port), "herald_stats_events_total",
                      result="dead_letter") == 1

        # Replay: the stats consumer restarted from where it began counts nothing again.
        await roles[3].stop()
        await commit_offsets(topics.STATS_GROUP, topics.EVENTS, start)
        again = stats_role(logdir, free_port(), "stats-again")
        roles.append(again)
        await again.wait_log("partitions assigned")
        await eventually_async(lambda: caught_up(topics.STATS_GROUP, topics.EVENTS), 30,
                               "the restarted stats consumer to catch up")
        assert await store.task_stats(app.app_id, task) == truth
        assert await store.daily(app.app_id, [today]) == days
    finally:
        for d in online:
            await d.close()
        await events.stop()
        for role in roles:
            await role.stop()
