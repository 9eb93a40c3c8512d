"""Pushes to audiences through Kafka and a real router: tag, attribute, mixed and account
audiences reach exactly the devices they name; a request the router refuses goes to the
dead-letter topic and becomes a ``rejected`` event; a fan-out request seen twice fans out once;
and the planning steps of ``router.fanout`` cover an audience exactly."""

from __future__ import annotations

import collections
import json

import pytest

from herald.redis_store import RedisStore
from proto import topics
from proto.audience import Audience, TagCondition
from proto.envelopes import DeviceRecord, FanoutPush, FanoutStep
from proto.events import decode_event
from proto.message import Message
from proto.tasks import TaskState
from router.fanout import cut
from tests.e2e import stack
from tests.harness import REDIS, TopicWatcher, eventually, eventually_async, metric, scrape

#: account -> (its devices, their platform)
ACCOUNTS = {
    "alice": (["a1", "a2"], "ios"),
    "bob": (["b1"], "android"),
    "carol": (["c1"], "android"),
    "dave": (["d1"], "ios"),
    "erin": ([], ""),
}
TAGS = {"alice": ["vip", "beta"], "bob": ["vip"], "carol": ["beta"], "dave": ["churned"]}
CITY = {"alice": "Paris", "bob": "Lyon", "carol": "Paris", "dave": "Paris"}


@pytest.fixture
async def store():
    store = RedisStore(REDIS)
    yield store
    await store.close()


@pytest.fixture
async def population(store, app):
    """Accounts with tags, a ``city`` attribute, and offline devices without a vendor (each
    routing decision is then a ``failed``/``offline`` event); and one unbound device."""
    app_id = app.app_id
    await store.declare_attributes(app_id, ["city"])
    for account, (rids, platform) in ACCOUNTS.items():
        await store.import_accounts(app_id, [account])
        for rid in rids:
            record = DeviceRecord(platform=platform)
            await store.put_device(app_id, rid, record)
            await store.observe_device(app_id, rid, record, 1)
            await store.bind_account(app_id, rid, account)
    for account, tags in TAGS.items():
        await store.add_tags(app_id, [account], tags)
    await store.set_attributes(app_id, {a: {"city": c} for a, c in CITY.items()})
    loose = DeviceRecord(platform="android")
    await store.put_device(app_id, "z1", loose)
    await store.observe_device(app_id, "z1", loose, 1)
    return app_id


def reached(events: TopicWatcher, task: str) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for record in events.records:
        if record.key == task.encode():
            event = decode_event(record.value)
            if event.stage == "failed":
                counts.update(event.devices())
    return counts


async def reached_at_least(events: TopicWatcher, task: str,
                           count: int) -> collections.Counter[str]:
    """The devices of ``task`` with a decision, once there are ``count`` decisions."""
    counts = await eventually(lambda: (lambda c: c if sum(c.values()) >= count else None)(
        reached(events, task)), 20, f"{count} decisions of {task}")
    return counts


CASES = {
    "all": ({"all": True}, {"a1", "a2", "b1", "c1", "d1", "z1"}),
    "tags-and-or-not": ({"tags": {"or": ["vip", "beta"], "not": ["churned", "beta"]}}, {"b1"}),
    "tags-and": ({"tags": {"and": ["vip", "beta"]}}, {"a1", "a2"}),
    "tags-not-only": ({"tags": {"not": ["vip"]}}, {"c1", "d1"}),
    "attributes": ({"attributes": {"and": [{"name": "city", "value": "Paris"}]}},
                   {"a1", "a2", "c1", "d1"}),
    "mixed": ({"tags": {"or": ["beta", "churned"]},
               "attributes": {"or": [{"name": "city", "value": "Paris"}]},
               "device": {"platform": ["ios"]}}, {"a1", "a2", "d1"}),
    "device-only": ({"device": {"platform": ["android"]}}, {"b1", "c1", "z1"}),
    "accounts": ({"accounts": ["alice", "bob", "erin", "nobody"]}, {"a1", "a2", "b1"}),
    "registration-ids": ({"registration_ids": ["a1", "unknown"]}, {"a1", "unknown"}),
}


async def test_audiences_reach_exactly_their_devices(population, producer, logdir, uid, store):
    app_id = population
    events = await TopicWatcher(topics.EVENTS).start()
    dead = await TopicWatcher(topics.DEADLETTER).start()
    ports = stack.ports()
    router = stack.router(logdir, ports)
    try:
        await router.wait_log("partitions assigned")
        for name, (audience, _) in CASES.items():
            request = {"task_id": f"{name}-{uid}", "app_id": app_id, "audience": audience,
                       "push_flag": 1, "message": {"title": name}}
            await producer.send_and_wait(topics.REQUESTS, json.dumps(request).encode())
        # The same fan-out request again (a backend retrying): it fans out once.
        again = {"task_id": f"all-{uid}", "app_id": app_id, "audience": {"all": True},
                 "push_flag": 1, "message": {"title": "all"}}
        await producer.send_and_wait(topics.REQUESTS, json.dumps(again).encode())
        # Refused by the router: an attribute the app never declared, a tag list over 10.
        bad = {
            f"undeclared-{uid}": {"attributes": {"and": [{"name": "age", "value": "30"}]}},
            f"eleven-{uid}": {"tags": {"or": [f"t{i}" for i in range(11)]}},
        }
        for task, audience in bad.items():
            request = {"task_id": task, "app_id": app_id, "audience": audience,
                       "message": {"title": "never"}}
            await producer.send_and_wait(topics.REQUESTS, json.dumps(request).encode())

        for name, (_, expected) in CASES.items():
            task = f"{name}-{uid}"

            async def done(task: str = task) -> bool:
                got = await store.task_status(app_id, task)
                return got is not None and got.state is TaskState.DONE
            await eventually_async(done, 30, f"task {task} done")
            counts = await reached_at_least(events, task, len(expected))
            assert set(counts) == expected, name
            assert set(counts.values()) == {1}, name
            status = await store.task_status(app_id, task)
            assert status is not None
            assert status.devices == len(expected) and status.decisions == {
                "offline": len(expected)}, name
            kind = name if name in ("all", "accounts") else (
                "registration_ids" if name == "registration-ids" else "filter")
            assert status.audience == kind

        def dead_letters() -> list[str] | None:
            texts = [dict(r.headers)[topics.DL_REASON].decode() for r in dead.records
                     if f"-{uid}".encode() in r.value]
            return texts if len(texts) >= 2 else None
        texts = await eventually(dead_letters, 20, "two dead letters")
        assert len(texts) == 2
        assert any(t.startswith("unknown_attribute: attributes ['age']") for t in texts), texts
        assert any(t.startswith("too_many_terms: tags.or has 11 terms") for t in texts), texts
        for task in bad:
            rejected = await eventually(lambda task=task: [
                decode_event(r.value) for r in events.records
                if r.key == task.encode() and decode_event(r.value).stage == "rejected"], 20,
                f"the rejection of {task}")
            assert (rejected[0].reason, rejected[0].app_id) == ("invalid_request", app_id)
            status = await store.task_status(app_id, task)
            assert status is not None and status.state is TaskState.REJECTED
            assert status.reason in texts
        text = scrape(ports.router_metrics)
        assert metric(text, "herald_router_fanout_total", kind="request",
                      result="replayed") >= 1
    finally:
        await router.stop()
        await events.stop()
        await dead.stop()


async def test_planning_steps_cover_an_audience_exactly_once(store, redis_client, uid):
    """Steps of ``cut`` walked to the end, over an account audience whose accounts hold one
    or two devices: every device lands in exactly one shard, shards hold at most the shard
    size, and a step stops within one page past ``shards`` full shards."""
    app_id = f"cut-{uid}"
    accounts = [f"u{i}" for i in range(700)]
    for i in range(0, len(accounts), 100):
        await store.add_tags(app_id, accounts[i:i + 100], ["all"])
    expected = set()
    for i, account in enumerate(accounts):
        for j in range(1 + i % 2):
            await store.bind_account(app_id, f"d{i}-{j}", account)
            expected.add(f"d{i}-{j}")
    resolved = await store.resolve(app_id, Audience(tags=TagCondition(and_=["all"])), 1)
    push = FanoutPush(app_id=app_id, task_id="t", msg_id="t", message=Message(title="x"), frame=b"",
                      push_flag=1)
    step: FanoutStep | None = FanoutStep(push, resolved, 0, 0)
    seen: list[str] = []
    steps = 0
    while step is not None:
        result = await cut(store, step, 50, 3)
        assert all(len(s.registration_ids) <= 50 for s in result.shards)
        assert [s.shard for s in result.shards] == [f"{step.seq}.{i}"
                                                    for i in range(len(result.shards))]
        assert result.devices == sum(len(s.registration_ids) for s in result.shards)
        # A page is 50 accounts of at most two devices each.
        assert result.devices < 150 + 100
        if result.next is not None:
            assert result.devices >= 150
        seen += [rid for s in result.shards for rid in s.registration_ids]
        step = result.next
        steps += 1
    assert sorted(seen) == sorted(expected)
    assert steps > 3
