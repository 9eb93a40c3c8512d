"""The gateway's outflow on the real Kafka: one push's ACKs of the same millisecond leave as
one ``delivered`` event naming every device, each device keeping its exact time."""

from __future__ import annotations

from gateway.outflow import Outflow
from herald.kafka_bus import KafkaBus
from proto import topics
from proto.events import Channel, Event, Stage, decode_event
from tests.harness import KAFKA, TopicWatcher, eventually


def delivered(task: str, rid: str, ts_ms: int) -> Event:
    return Event(stage=Stage.DELIVERED, task_id=task, app_id="app", msg_id=task,
                 registration_id=rid, channel=Channel.ONLINE, node="n1", ts_ms=ts_ms)


async def test_acks_of_one_push_in_one_millisecond_are_one_event(uid):
    one, two = f"t1-{uid}", f"t2-{uid}"
    bus = KafkaBus(KAFKA, client_id=f"test-{uid}")
    watcher = await TopicWatcher(topics.EVENTS).start()
    await bus.start()
    try:
        outflow = Outflow(bus, "n1")
        sent = Event(stage=Stage.SENT, task_id=one, app_id="app", msg_id=one,
                     registration_ids=["a", "b", "c", "d"], channel=Channel.ONLINE, ts_ms=99)
        for event in (sent, delivered(one, "a", 100), delivered(two, "x", 100),
                      delivered(one, "b", 100), delivered(one, "c", 101),
                      delivered(one, "d", 100)):
            outflow.emit(event)
        await outflow.flush()

        def records() -> list[Event]:
            return [decode_event(r.value) for r in watcher.records
                    if r.key in (one.encode(), two.encode())]

        await eventually(lambda: len(records()) >= 4, 20, "four records")
        events = records()
    finally:
        await bus.stop()
        await watcher.stop()
    ours = [e for e in events if e.task_id == one]
    assert ours[0] == sent
    assert [(e.ts_ms, e.devices()) for e in ours[1:]] == [(100, ["a", "b", "d"]), (101, ["c"])]
    assert ours[2].registration_id == "c" and not ours[2].registration_ids
    (other,) = [e for e in events if e.task_id == two]
    assert other == delivered(two, "x", 100)
