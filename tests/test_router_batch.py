"""``Router.route`` on the real Redis and Kafka, in-process: a replay next to its original in
one batch (a fan-out request, a planning step, a shard) is acted on once."""

from __future__ import annotations

import pytest

from herald.bus import Record
from herald.kafka_bus import KafkaBus
from herald.redis_store import RedisStore
from herald.settings import RouterSettings
from proto import keys, topics
from proto.audience import Audience
from proto.envelopes import (
    DeviceRecord,
    FanoutPush,
    FanoutShard,
    FanoutStep,
    PushRequest,
    decode_fanout,
    encode_internal,
    encode_push_request,
)
from proto.events import decode_event
from proto.message import Message
from router.service import Router
from tests.harness import KAFKA, REDIS, TopicWatcher, eventually

SENTINEL = b"sentinel"


@pytest.fixture
async def router():
    store = RedisStore(REDIS)
    bus = KafkaBus(KAFKA, client_id="test-router-batch")
    await bus.start()
    yield Router(RouterSettings(fanout_shard=10, fanout_step=2), store, bus), store, bus
    await bus.stop()
    await store.close()


async def until_sentinel(bus: KafkaBus, watcher: TopicWatcher, key: bytes) -> list[bytes]:
    """The values ``watcher`` saw under ``key`` before a sentinel published now under the same
    key (so in the same partition, after everything published before it)."""
    await (await bus.publish(watcher.topic, SENTINEL, key=key))
    await eventually(lambda: any(r.key == key and r.value == SENTINEL for r in watcher.records),
                     20, "the sentinel")
    values = [r.value for r in watcher.records if r.key == key]
    return values[:values.index(SENTINEL)]


async def test_a_fanout_request_twice_in_one_batch_starts_one_chain(router, app, uid):
    route, _, bus = router
    task = f"twice-{uid}"
    request = encode_push_request(PushRequest(task_id=task, app_id=app.app_id,
                                              audience=Audience(all=True),
                                              message=Message(title="x")))
    record = Record(topics.REQUESTS, 0, 0, task.encode(), request)
    watcher = await TopicWatcher(topics.FANOUT).start()
    try:
        await route.route([record, record])
        steps = [decode_fanout(v) for v in await until_sentinel(bus, watcher, task.encode())]
        assert [(type(s), s.seq) for s in steps] == [(FanoutStep, 0)]
    finally:
        await watcher.stop()


async def test_a_step_or_shard_twice_in_one_batch_routes_each_device_once(router, app, uid,
                                                                         redis_client):
    route, store, bus = router
    task = f"shard-{uid}"
    # More than Redis keeps in a compact set, so SSCAN pages by its count.
    rids = [f"d{i}" for i in range(300)]
    for rid in rids:
        await redis_client.set(keys.device(app.app_id, rid), encode_internal(DeviceRecord()))
        await redis_client.sadd(keys.all_devices(app.app_id), rid)
    resolved = await store.resolve(app.app_id, Audience(all=True), 0)
    push = FanoutPush(app_id=app.app_id, task_id=task, msg_id=task,
                      message=Message(title="x"), frame=b"\x80", push_flag=1)
    step = Record(topics.FANOUT, 0, 0, task.encode(),
                  encode_internal(FanoutStep(push, resolved, 0, 0)))
    fanout = await TopicWatcher(topics.FANOUT).start()
    events = await TopicWatcher(topics.EVENTS).start()
    try:
        await route.route([step, step])
        shards = [decode_fanout(r.value) for r in await eventually(
            lambda: [r for r in fanout.records if r.key.startswith(f"{task}/0.".encode())]
            or None, 20, "the shards")]
        # About two shards of ten (fanout_step=2) and one step for the rest; each once.
        following = await until_sentinel(bus, fanout, task.encode())
        assert [decode_fanout(v).seq for v in following] == [1]
        names = [s.shard for s in shards]
        assert len(names) >= 2 and sorted(names) == [f"0.{i}" for i in range(len(names))]
        assert all(isinstance(s, FanoutShard) for s in shards)
        size = sum(len(s.registration_ids) for s in shards)
        again = [Record(topics.FANOUT, 0, 0, None, encode_internal(s)) for s in shards]
        await route.route([again[0], *again])
        # A router on the stack may take the next step meanwhile: count these shards' devices.
        mine = {rid for s in shards for rid in s.registration_ids}
        decided = [rid for v in await until_sentinel(bus, events, task.encode())
                   if (event := decode_event(v)).stage == "failed" for rid in event.devices()
                   if rid in mine]
        assert len(decided) == size and len(set(decided)) == size
        # Counted once too, whether or not another router took the rest of the audience.
        status = await store.task_status(app.app_id, task)
        assert status is not None and status.shards_done >= len(names)
        assert size <= status.decisions["offline"] <= status.devices
    finally:
        await fanout.stop()
        await events.stop()
