"""Fan-out of all-users pushes over 100,000 registered devices by two router processes: one
routing decision per device, memory that does not grow with the audience, a router killed
mid-way, a task stopped mid-way."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from herald.apps import new_app
from herald.redis_store import RedisStore
from proto import topics
from proto.events import decode_event
from proto.tasks import TaskState
from tests.e2e import stack
from tests.e2e.population import populate
from tests.harness import (
    REDIS,
    Role,
    TopicWatcher,
    eventually,
    eventually_async,
    metric,
    private_groups,
    scrape,
)

DEVICES = 100_000
SMALL = 20_000
#: The routers' fan-out settings for these tests (the defaults, spelled out).
SHARD = 1000
BATCH = 4


@pytest.fixture(scope="module")
async def population(redis_client):
    """Two apps: one of 100,000 devices, one of 20,000."""
    store = RedisStore(REDIS)
    apps = {}
    for name, count in (("big", DEVICES), ("small", SMALL)):
        record = new_app(f"fan-{name}-{id(store):x}")
        await store.put_app(record)
        apps[name] = (record.app_id, await populate(redis_client, record.app_id, count))
    await store.close()
    return apps


def rss_kib(role: Role) -> int:
    """Resident memory of a role process."""
    for line in Path(f"/proc/{role.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {role.args}")


def fanout_partitions(role: Role) -> set[int]:
    """The ``push.fanout`` partitions the router holds after its last assignment."""
    held: set[int] = set()
    for line in role.logs():
        parts = [p for p in line.get("partitions", []) if p.startswith(topics.FANOUT + "/")]
        if line.get("event") == "partitions assigned" and parts:
            held = {int(p.rsplit("/", 1)[1]) for p in parts}
        elif line.get("event") == "partitions revoked" and parts:
            held = set()
    return held


async def two_routers(logdir: Path, name: str) -> list[Role]:
    """Two routers sharing the fan-out partitions, each with its metrics port, in groups of
    their own (one of them may be killed)."""
    groups = await private_groups()
    routers = [stack.router(logdir, stack.ports(), f"{name}-{i}",
                            HERALD_FANOUT_SHARD=str(SHARD), HERALD_FANOUT_BATCH=str(BATCH),
                            **groups) for i in range(2)]

    def balanced() -> bool:
        held = [fanout_partitions(r) for r in routers]
        for r in routers:
            if r.proc.poll() is not None:
                raise AssertionError(f"{r.args} exited {r.proc.returncode}")
        return all(held) and held[0].isdisjoint(held[1]) and len(held[0] | held[1]) == 8

    try:
        await eventually(balanced, 60, "both routers to hold fan-out partitions")
    except BaseException:
        for r in routers:
            await r.stop()
        raise
    return routers


async def push_all(producer, app_id: str, task: str) -> None:
    request = {"task_id": task, "app_id": app_id, "audience": {"all": True}, "push_flag": 1,
               "message": {"title": "everyone"}}
    await producer.send_and_wait(topics.REQUESTS, json.dumps(request).encode(),
                                 key=task.encode())


def decisions(watcher: TopicWatcher, task: str) -> collections.Counter[str]:
    """Routing decisions per device of ``task``: every device of these audiences is offline
    without a vendor channel, so each decision is a ``failed``/``offline`` loss."""
    counts: collections.Counter[str] = collections.Counter()
    # Once per record: a consumer that fetched a range again must not look like a router that
    # routed a device twice (that would be a second record).
    unique = {(r.partition, r.offset): r for r in watcher.records}.values()
    for record in unique:
        if record.key == task.encode():
            event = decode_event(record.value)
            if event.stage == "failed":
                assert event.reason == "offline"
                counts.update(event.devices())
    return counts


async def run_to_done(store, producer, routers, app_id: str, task: str,
                      peak: dict[str, int]) -> None:
    await push_all(producer, app_id, task)

    async def done() -> bool:
        for r in routers:
            peak[r.log_path.name] = max(peak.get(r.log_path.name, 0), rss_kib(r))
        got = await store.task_status(app_id, task)
        return got is not None and got.state is TaskState.DONE

    await eventually_async(done, 120, f"task {task} to be done")


async def test_every_device_gets_one_decision_and_memory_stays_flat(population, producer,
                                                                    logdir, uid):
    events = await TopicWatcher(topics.EVENTS).start()
    routers = await two_routers(logdir, "fan")
    store = RedisStore(REDIS)
    try:
        small_app, _ = population["small"]
        big_app, big_rids = population["big"]
        small_peak: dict[str, int] = {}
        big_peak: dict[str, int] = {}
        await run_to_done(store, producer, routers, small_app, f"small-{uid}", small_peak)
        await run_to_done(store, producer, routers, big_app, f"big-{uid}", big_peak)

        got = await eventually(lambda: (lambda c: c if sum(c.values()) >= DEVICES else None)(
            decisions(events, f"big-{uid}")), 60, "an event per device")
        assert set(got) == set(big_rids)
        assert set(got.values()) == {1}, "a device was routed twice"
        final = await store.task_status(big_app, f"big-{uid}")
        small = await store.task_status(small_app, f"small-{uid}")
        assert final is not None and small is not None
        # A step stops at the page that fills its shards, so a step's last shard may be short.
        assert final.devices == DEVICES and final.planned
        least = DEVICES // SHARD
        assert least <= final.shards_planned == final.shards_done < least * 1.1
        assert (small.devices, small.decisions) == (SMALL, {"offline": SMALL})
        assert final.decisions == {"offline": DEVICES}
        assert final.audience == "all"
        # Both routers took a share of the shards (their counters may also hold shards other
        # tests left on the topic).
        shards = [metric(scrape(int(r.env["HERALD_METRICS_PORT"])), "herald_router_fanout_total",
                         kind="shard", result="done") for r in routers]
        assert all(n > 0 for n in shards), shards
        # Five times the audience, and no router grew by 4 MiB: nothing holds an audience
        # (a list of these 100,000 registration ids alone takes over 6 MiB in CPython).
        for name, kib in big_peak.items():
            assert kib - small_peak[name] < 4 * 1024, (small_peak, big_peak)
    finally:
        await store.close()
        await events.stop()
        for r in routers:
            await r.stop()


async def test_a_router_killed_mid_way_leaves_the_rest_to_the_other(population, producer,
                                                                    logdir, uid):
    events = await TopicWatcher(topics.EVENTS).start()
    routers = await two_routers(logdir, "kill")
    store = RedisStore(REDIS)
    app_id, rids = population["big"]
    task = f"kill-{uid}"
    try:
        await push_all(producer, app_id, task)

        async def under_way() -> bool:
            got = await store.task_status(app_id, task)
            return got is not None and got.shards_done >= 10
        await eventually_async(under_way, 60, "ten shards routed")
        before = await store.task_status(app_id, task)
        assert before is not None and before.state is TaskState.RUNNING
        routers[0].kill()

        async def done() -> bool:
            got = await store.task_status(app_id, task)
            return got is not None and got.state is TaskState.DONE
        await eventually_async(done, 120, "the other router to finish the task")
        counts = await eventually(lambda: (lambda c: c if len(c) == DEVICES else None)(
            decisions(events, task)), 60, "a decision for every device")
        assert set(counts) == set(rids)
        # At most the batch the killed router had in hand is routed again.
        again = sum(n - 1 for n in counts.values())
        assert again <= BATCH * SHARD, again
        final = await store.task_status(app_id, task)
        assert final is not None and final.decisions == {"offline": DEVICES}
    finally:
        await store.close()
        await events.stop()
        for r in routers:
            await r.stop()


async def test_a_task_stopped_mid_way_routes_no_further_shard(population, producer, logdir,
                                                              uid):
    events = await TopicWatcher(topics.EVENTS).start()
    routers = await two_routers(logdir, "stop")
    store = RedisStore(REDIS)
    app_id, _ = population["big"]
    task = f"stop-{uid}"
    try:
        await push_all(producer, app_id, task)

        async def under_way() -> bool:
            got = await store.task_status(app_id, task)
            return got is not None and got.shards_done >= 5
        await eventually_async(under_way, 60, "five shards routed")
        stopped = await store.stop_task(app_id, task, 1)
        assert stopped is not None and stopped.state is TaskState.STOPPED

        def dropped(kind: str) -> float:
            return sum(metric(scrape(int(r.env["HERALD_METRICS_PORT"])),
                              "herald_router_fanout_total", kind=kind, result="stopped")
                       for r in routers)

        async def settled() -> bool:
            # Every shard cut is accounted for (routed before the stop landed, or dropped
            # after it), and the planning chain ended: by itself or at the stop.
            got = await store.task_status(app_id, task)
            assert got is not None
            chain_over = got.planned or dropped("step") >= 1
            return chain_over and got.shards_done + dropped("shard") >= got.shards_planned
        await eventually_async(settled, 60, "every shard of the stopped task consumed")
        final = await store.task_status(app_id, task)
        assert final is not None and final.state is TaskState.STOPPED
        routed = sum(final.decisions.values())
        assert 5 * SHARD <= routed < DEVICES
        assert dropped("shard") > 0
        counts = await eventually(lambda: (lambda c: c if sum(c.values()) >= routed else None)(
            decisions(events, task)), 60, "the events of the routed shards")
        assert sum(counts.values()) == routed
        # A stopped task cannot be stopped again, and says so by staying as it is.
        again = await store.stop_task(app_id, task, 2)
        assert again is not None and again.stopped_ms == final.stopped_ms
    finally:
        await store.close()
        await events.stop()
        for r in routers:
            await r.stop()
