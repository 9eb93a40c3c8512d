"""``herald callbacks`` as a process on the real Redis and Kafka, posting to local receivers:
signed posts of exactly the stages asked for, in few posts; retries, then parking; one app's
hanging receiver next to another app's and next to a push through gateway and router; bad
events and a bad config next to good ones."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from herald.device import Device
from herald.redis_store import RedisStore
from proto import keys, topics
from proto.callbacks import MAX_BATCH
from proto.events import Event, Stage, encode_event
from tests.e2e import stack
from tests.harness import (
    REDIS,
    Role,
    TopicWatcher,
    commit_offsets,
    committed_offsets,
    end_offsets,
    eventually,
    eventually_async,
    free_port,
    metric,
    scrape,
)
from tests.test_callbacks import Receiver

ATTEMPTS = 3
TIMEOUT_S = 1.5


async def start_callbacks(logdir: Path, name: str = "callbacks",
                          from_end: bool = True) -> tuple[Role, int]:
    """A callbacks process; ``from_end``: the group starts at the end of push.events, since
    earlier tests' events are not ours (else where the group left off)."""
    if from_end:
        await commit_offsets(topics.CALLBACKS_GROUP, topics.EVENTS,
                             await end_offsets(topics.EVENTS))
    port = free_port()
    role = Role(["callbacks"], {"HERALD_METRICS_PORT": str(port),
                                "HERALD_MAX_ATTEMPTS": str(ATTEMPTS),
                                "HERALD_REQUEST_TIMEOUT_S": str(TIMEOUT_S),
                                "HERALD_BACKOFF_BASE_S": "0.05", "HERALD_BACKOFF_MAX_S": "0.2",
                                "HERALD_FLUSH_MS": "150"}, logdir / f"{name}.log")
    await role.wait_log("partitions assigned")
    return role, port


async def caught_up() -> bool:
    """Whether the callbacks group has committed every event so far: all of them handled."""
    return (await committed_offsets(topics.CALLBACKS_GROUP, topics.EVENTS)
            == await end_offsets(topics.EVENTS))


async def produce(producer: AIOKafkaProducer, events: Sequence[Event],
                  key: bytes | None = None) -> None:
    """Publish ``events`` to push.events at once, keyed by task unless ``key`` is given."""
    sent = [await producer.send(topics.EVENTS, encode_event(e), key=key or e.task_id.encode())
            for e in events]
    await asyncio.gather(*sent)


def event(stage: Stage, app_id: str, task: str, device: str = "") -> Event:
    return Event(stage=stage, task_id=task, app_id=app_id, registration_id=device,
                 channel="online", ts_ms=1)


def parked_of(watcher: TopicWatcher, app_id: str) -> list:
    return [r for r in watcher.records if dict(r.headers)[topics.CB_APP] == app_id.encode()]


@pytest.fixture(scope="module")
async def callbacks(tmp_path_factory) -> AsyncIterator[tuple[Role, int]]:
    """One callbacks process for the module: its metrics port beside it."""
    role, port = await start_callbacks(tmp_path_factory.mktemp("callbacks"))
    yield role, port
    assert await role.stop() == 0


@pytest.fixture
async def store() -> AsyncIterator[RedisStore]:
    opened = RedisStore(REDIS)
    yield opened
    await opened.close()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    """Started receivers, stopped (hanging ones released) after the test."""
    started: list[Receiver] = []
    yield started
    for r in started:
        r.stop()


@pytest.fixture
async def parked() -> AsyncIterator[TopicWatcher]:
    watcher = await TopicWatcher(topics.CALLBACKS_PARKED).start()
    yield watcher
    await watcher.stop()


def receiver(receivers: list[Receiver], **options) -> Receiver:
    started = Receiver(**options).start()
    receivers.append(started)
    return started


async def test_posts_are_signed_and_carry_exactly_the_stages_asked_for(
        callbacks, producer, store, receivers, uid):
    _, port = callbacks
    wants, nobody, many = f"cb-a-{uid}", f"cb-b-{uid}", f"cb-c-{uid}"
    a, c = receiver(receivers), receiver(receivers, secret="another secret")
    await store.put_callback(wants, a.config(Stage.SENT, Stage.DELIVERED))
    await store.put_callback(many, c.config(Stage.CLICKED))
    before = metric(scrape(port), "herald_callbacks_events_total", result="not_wanted")
    mixed = [event(stage, wants, f"t{i}-{uid}", f"d{i}") for i in range(40)
             for stage in (Stage.TARGETED, Stage.SENT, Stage.DELIVERED, Stage.FAILED)]
    clicks = [event(Stage.CLICKED, many, f"c{i}-{uid}", f"d{i}") for i in range(1200)]
    await produce(producer, [*mixed, *[event(Stage.DELIVERED, nobody, f"n{i}-{uid}", "d")
                                       for i in range(40)], *clicks])
    await eventually(lambda: len(a.events()) >= 80 and len(c.events()) >= 1200, 20,
                     "every wanted event posted")
    await eventually_async(caught_up, 20, "the callbacks group to commit every event")

    def ids(events) -> Counter:
        return Counter((e["task_id"], e["stage"], e["registration_id"]) for e in events)
    assert ids(a.events()) == ids(json.loads(encode_event(e)) for e in mixed
                                  if e.stage in (Stage.SENT, Stage.DELIVERED))
    assert ids(c.events()) == ids(json.loads(encode_event(e)) for e in clicks)
    assert all(s.verified for s in [*a.seen, *c.seen])
    assert {b["app_id"] for b in a.delivered()} == {wants}
    assert {b["app_id"] for b in c.delivered()} == {many}
    # Many events, few posts: 1,200 produced at once go as three or a few more, none over
    # the limit.
    assert max(len(b["events"]) for b in c.delivered()) <= MAX_BATCH
    assert len(c.seen) <= 8 and len(a.seen) <= 4
    after = metric(scrape(port), "herald_callbacks_events_total", result="not_wanted")
    assert after - before >= 80 + 40


async def test_a_failing_post_is_retried_then_parked(callbacks, producer, store, receivers,
                                                     parked, uid):
    _, port = callbacks
    failing, recovering = f"cb-d-{uid}", f"cb-e-{uid}"
    # Exactly the attempts: a fourth would be answered 200 and show as delivered.
    d = receiver(receivers, statuses=[500] * ATTEMPTS)
    e = receiver(receivers, statuses=[500, 503])
    await store.put_callback(failing, d.config(Stage.DELIVERED))
    await store.put_callback(recovering, e.config(Stage.DELIVERED))
    await produce(producer, [event(Stage.DELIVERED, failing, f"f{i}-{uid}", "d") for i in (1, 2)]
                  + [event(Stage.DELIVERED, recovering, f"r-{uid}", "d")])

    (record,) = await eventually(lambda: parked_of(parked, failing), 20, "the parked post")
    assert [s.status for s in d.seen] == [500] * ATTEMPTS
    assert all(s.verified for s in d.seen)
    assert {s.body for s in d.seen} == {record.value}
    assert json.loads(record.value)["app_id"] == failing
    assert len(json.loads(record.value)["events"]) == 2
    headers = dict(record.headers)
    assert headers[topics.DL_REASON].decode() == f"status: HTTP 500 ({ATTEMPTS} attempts)"
    assert headers[topics.DL_SOURCE].startswith(b"push.events/")
    assert record.key == failing.encode()

    await eventually(lambda: e.events(), 20, "the recovering receiver's post")
    await eventually_async(caught_up, 20, "the callbacks group to commit every event")
    assert [s.status for s in e.seen] == [500, 503, 200]
    assert [x["task_id"] for x in e.events()] == [f"r-{uid}"]
    assert parked_of(parked, recovering) == []
    text = scrape(port)
    assert metric(text, "herald_callbacks_parked_total", app=failing, failure="status") == 1
    assert metric(text, "herald_callbacks_parked_total", app=recovering, failure="status") == 0


async def test_bad_events_and_a_bad_config_do_not_stop_the_others(callbacks, producer, store,
                                                                  redis_client, receivers,
                                                                  uid):
    role, port = callbacks
    broken, fine = f"cb-f-{uid}", f"cb-g-{uid}"
    g = receiver(receivers)
    await redis_client.set(keys.callback(broken), b'{"url": "not a url", "stages": []}')
    await store.put_callback(fine, g.config(Stage.SENT))
    before = metric(scrape(port), "herald_callbacks_events_total", result="undecodable")
    key = f"bad-{uid}".encode()  # one partition: the bad record sits before the good ones
    await producer.send_and_wait(topics.EVENTS, b"{not an event", key=key)
    await produce(producer, [event(Stage.SENT, broken, f"b-{uid}", "d"),
                             event(Stage.SENT, fine, f"g-{uid}", "d")], key=key)
    await eventually(lambda: g.events(), 20, "the good app's post")
    assert [x["task_id"] for x in g.events()] == [f"g-{uid}"]
    await role.wait_log("invalid callback config; the app's events are not posted",
                        app_id=broken)
    text = scrape(port)
    assert metric(text, "herald_callbacks_events_total", result="undecodable") - before == 1
    assert metric(text, "herald_callbacks_config_lookups_total", result="invalid") >= 1
    assert role.find("undecodable event skipped") is not None
    await redis_client.delete(keys.callback(broken))


async def test_a_hanging_receiver_holds_back_no_other_app(callbacks, producer, store,
                                                          receivers, parked, uid):
    hanging, other = f"cb-h-{uid}", f"cb-i-{uid}"
    h, i = receiver(receivers, hang=True), receiver(receivers)
    await store.put_callback(hanging, h.config(Stage.DELIVERED))
    await store.put_callback(other, i.config(Stage.DELIVERED))
    # One partition, one produce request: both events come in one batch, whose posts run
    # concurrently (a later batch would wait for this one: see callbacks.service).
    started = time.monotonic()
    await produce(producer, [event(Stage.DELIVERED, hanging, f"h-{uid}", "d"),
                             event(Stage.DELIVERED, other, f"i-{uid}", "d")],
                  key=f"both-{uid}".encode())
    await eventually(lambda: i.events(), TIMEOUT_S, "the other app's post, well before the "
                     f"hanging one's {ATTEMPTS} attempts of {TIMEOUT_S} s")
    assert h.seen and all(s.status is None for s in h.seen)
    (record,) = await eventually(lambda: parked_of(parked, hanging), 20, "the hung post parked")
    assert time.monotonic() - started >= ATTEMPTS * TIMEOUT_S
    assert len(h.seen) == ATTEMPTS
    assert dict(record.headers)[topics.DL_REASON].decode().startswith("timeout: ")


async def test_pushes_are_delivered_while_a_receiver_hangs(callbacks, producer, store,
                                                           receivers, logdir, uid, app):
    j = receiver(receivers, hang=True)
    await store.put_callback(app.app_id, j.config(Stage.SENT, Stage.DELIVERED))
    ports = stack.ports()
    roles = [stack.gateway(logdir, f"node-{uid}", ports), stack.router(logdir, ports)]
    device = Device(app.app_id, app.client_key)
    try:
        await roles[0].wait_log("gateway listening")
        await roles[1].wait_log("partitions assigned")
        await device.connect(f"ws://127.0.0.1:{ports.gateway}")
        await produce(producer, [event(Stage.DELIVERED, app.app_id, f"earlier-{uid}", "d")])
        await eventually(lambda: j.seen, 10, "the receiver to hang on a post")

        task = f"push-{uid}"
        request = {"task_id": task, "app_id": app.app_id,
                   "registration_ids": [device.registration_id], "message": {"title": "hi"}}
        await producer.send_and_wait(topics.REQUESTS, json.dumps(request).encode(),
                                     key=task.encode())
        (push,) = await device.wait_for(1, 5)
        assert push.task == task
        assert j.seen and all(s.status is None for s in j.seen)  # still hanging throughout

        # The receiver answers again: the push's own events reach it too.
        j.hang = False
        await eventually(lambda: {(x["task_id"], x["stage"]) for x in j.events()} >= {
            (task, "sent"), (task, "delivered")}, 20, "the push's events posted")
    finally:
        await device.close()
        for role in roles:
            await role.stop()
