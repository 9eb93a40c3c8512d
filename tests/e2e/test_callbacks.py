"""``herald callbacks`` as a process on the real Redis and Kafka, posting to local receivers:
signed posts of exactly the stages asked for, in few posts; retries through
push.callbacks.retry, then parking; one app's hanging receiver next to another app's posts,
of the same batch and of later ones, and next to a push through gateway and router; bad
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

from callbacks import retries
from herald.redis_store import RedisStore
from proto import keys, topics
from proto.callbacks import MAX_BATCH
from proto.events import Event, Stage, encode_event
from tests.e2e import stack
from tests.harness import (
    REDIS,
    Role,
    TopicWatcher,
    caught_up,
    commit_offsets,
    end_offsets,
    eventually,
    eventually_async,
    free_port,
    metric,
    scrape,
)
from tests.test_callbacks import Receiver

ATTEMPTS = 3
#: A post's first attempt (the main loop), and each retry's (the retry loop).
FIRST_TIMEOUT_S = 0.5
TIMEOUT_S = 3.0
#: How long a hanging receiver holds a post before it is parked, at least.
HUNG_S = FIRST_TIMEOUT_S + (ATTEMPTS - 1) * TIMEOUT_S


async def start_callbacks(logdir: Path, name: str = "callbacks", from_end: bool = True,
                          **settings: str) -> tuple[Role, int]:
    """A callbacks process, ``settings`` over the tests' own; ``from_end``: both groups start
    at the end of their topics, since earlier tests' records are not ours (else where the
    groups left off)."""
    if from_end:
        for group, topic in ((topics.CALLBACKS_GROUP, topics.EVENTS),
                             (topics.CALLBACKS_RETRY_GROUP, topics.CALLBACKS_RETRY)):
            await commit_offsets(group, topic, await end_offsets(topic))
    port = free_port()
    env = {"metrics_port": str(port), "max_attempts": str(ATTEMPTS),
           "first_timeout_s": str(FIRST_TIMEOUT_S), "request_timeout_s": str(TIMEOUT_S),
           "backoff_base_s": "0.05", "backoff_max_s": "0.2", "flush_ms": "150", **settings}
    role = Role(["callbacks"], {f"HERALD_{k.upper()}": v for k, v in env.items()},
                logdir / f"{name}.log")
    await role.wait_log("partitions assigned")
    return role, port


async def events_handled() -> bool:
    """Whether the main loop has committed every event published so far."""
    return await caught_up(topics.CALLBACKS_GROUP, topics.EVENTS)


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
    """The records of ``app_id`` on a watched topic (parked posts, or retries)."""
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


@pytest.fixture
async def retried() -> AsyncIterator[TopicWatcher]:
    watcher = await TopicWatcher(topics.CALLBACKS_RETRY).start()
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
    await eventually_async(events_handled, 20, "the callbacks group to commit every event")

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
                                                     parked, retried, uid):
    _, port = callbacks
    before = {loop: metric(scrape(port), "herald_callbacks_retries_total", loop=loop)
              for loop in ("first", "retry")}
    failing, recovering = f"cb-d-{uid}", f"cb-e-{uid}"
    # Exactly the attempts, the first by the main loop, the others by the retry loop: a
    # fourth would be answered 200 and show as delivered.
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
    # Handed from the main loop to the retry loop, then from attempt to attempt.
    scheduled = parked_of(retried, failing)
    assert [dict(r.headers)[retries.ATTEMPT] for r in scheduled] == [b"2", b"3"]
    assert {(r.key, r.value, dict(r.headers)[topics.DL_SOURCE]) for r in scheduled} == {
        (failing.encode(), record.value, headers[topics.DL_SOURCE])}
    # Due after a backoff of 0.2 s at most, from about when it was published.
    assert all(abs(int(dict(r.headers)[retries.NOT_BEFORE]) - r.timestamp) < 1000
               for r in scheduled)

    await eventually(lambda: e.events(), 20, "the recovering receiver's post")
    await eventually_async(events_handled, 20, "the callbacks group to commit every event")
    assert [s.status for s in e.seen] == [500, 503, 200]
    assert [x["task_id"] for x in e.events()] == [f"r-{uid}"]
    assert all(s.verified for s in e.seen)
    assert parked_of(parked, recovering) == []
    await eventually_async(lambda: caught_up(topics.CALLBACKS_RETRY_GROUP,
                                             topics.CALLBACKS_RETRY), 20,
                           "the retry group to commit every retry")
    text = scrape(port)
    assert metric(text, "herald_callbacks_parked_total", app=failing, failure="status") == 1
    assert metric(text, "herald_callbacks_parked_total", app=recovering, failure="status") == 0
    # Two posts failed their first attempt, and two their second.
    assert {loop: metric(text, "herald_callbacks_retries_total", loop=loop) - before[loop]
            for loop in before} == {"first": 2, "retry": 2}


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
    # concurrently.
    started = time.monotonic()
    await produce(producer, [event(Stage.DELIVERED, hanging, f"h-{uid}", "d"),
                             event(Stage.DELIVERED, other, f"i-{uid}", "d")],
                  key=f"both-{uid}".encode())
    await eventually(lambda: i.events(), 1.5, "the other app's post of the same batch, "
                     f"before the hanging one's first attempt of {FIRST_TIMEOUT_S} s is over")
    assert h.seen and all(s.status is None for s in h.seen)

    # Published after the hung post: in a later batch of the main loop, which waits for the
    # hung post's first attempt only, not for its retries.
    sent = time.monotonic()
    await produce(producer, [event(Stage.DELIVERED, other, f"j-{uid}", "d")])
    bound = FIRST_TIMEOUT_S + 2
    await eventually(lambda: len(i.events()) == 2, bound, f"the later post within {bound} s, "
                     f"well before the hung post's {HUNG_S} s are over")
    assert time.monotonic() - sent < bound < HUNG_S
    assert parked_of(parked, hanging) == [] and len(h.seen) < ATTEMPTS
    await eventually_async(events_handled, 10, "the main loop to commit, the hung post handed off")
    assert parked_of(parked, hanging) == []

    (record,) = await eventually(lambda: parked_of(parked, hanging), 20, "the hung post parked")
    assert time.monotonic() - started >= HUNG_S
    assert len(h.seen) == ATTEMPTS and all(s.status is None for s in h.seen)
    assert [x["task_id"] for x in i.events()] == [f"i-{uid}", f"j-{uid}"]
    assert [x["task_id"] for x in json.loads(record.value)["events"]] == [f"h-{uid}"]
    assert dict(record.headers)[topics.DL_REASON].decode() == (
        f"timeout: no answer within {TIMEOUT_S} s ({ATTEMPTS} attempts)")


async def test_pushes_are_delivered_while_a_receiver_hangs(callbacks, producer, store,
                                                           receivers, logdir, uid, app):
    j = receiver(receivers, hang=True)
    await store.put_callback(app.app_id, j.config(Stage.SENT, Stage.DELIVERED))
    async with stack.online(logdir, f"node-{uid}") as online:
        device = await online.device(app)
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
