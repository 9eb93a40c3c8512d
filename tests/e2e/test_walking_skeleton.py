"""One push through gateway, router and the sandbox vendor, on the real Redis and Kafka."""

from __future__ import annotations

import json

from herald.device import Device
from proto import keys, topics
from proto.events import decode_event
from proto.frames import message_of
from tests.e2e import stack
from tests.harness import TopicWatcher, eventually, eventually_async, metric, scrape


def events_of(watcher: TopicWatcher, task_id: str) -> list:
    return [e for e in (decode_event(r.value) for r in watcher.records) if e.task_id == task_id]


def request(app: str, task: str, rids: list[str], flag: int, **extra) -> bytes:
    return json.dumps({"task_id": task, "app_id": app, "registration_ids": rids,
                       "push_flag": flag, "message": {"title": f"title {task}", "body": "hello",
                                                      "data": {"k": "v"}}, **extra}).encode()


async def test_online_offline_and_dead_letter(producer, redis_client, sandbox, logdir, uid, app):
    events = await TopicWatcher(topics.EVENTS).start()
    dead = await TopicWatcher(topics.DEADLETTER).start()
    ports = stack.ports()
    node = f"node-{uid}"
    roles = [stack.gateway(logdir, node, ports), stack.router(logdir, ports),
             stack.vendor(logdir, ports, sandbox.url)]
    gateway, router, vendor = roles
    a, b = Device(app.app_id, app.client_key), Device(app.app_id, app.client_key)
    c = Device(app.app_id, app.client_key, vendor="sandbox", vendor_token=f"token-c-{uid}")
    devices = [a, b, c]
    try:
        await gateway.wait_log("gateway listening")
        await router.wait_log("partitions assigned")
        await vendor.wait_log("partitions assigned")
        url = f"ws://127.0.0.1:{ports.gateway}"
        for device in devices:
            await device.connect(url)
        await c.close()
        assert await redis_client.get(keys.presence(app.app_id, a.registration_id)) is not None

        async def c_gone() -> bool:
            return await redis_client.get(keys.presence(app.app_id, c.registration_id)) is None

        await eventually_async(c_gone, 10, "c's presence to go when it disconnects")

        key = app.app_id.encode()  # one partition: the garbage sits in front of the pushes
        t_online, t_flag0, t_flag1 = f"on-{uid}", f"f0-{uid}", f"f1-{uid}"
        await producer.send_and_wait(topics.REQUESTS, b"\x00 not a push request", key=key)
        await producer.send_and_wait(topics.REQUESTS, b'{"task_id": "bad-' + uid.encode()
                                     + b'", "app_id": "x"}', key=key)
        await producer.send_and_wait(topics.REQUESTS, request(
            app.app_id, t_online, [a.registration_id, b.registration_id], 0), key=key)
        await producer.send_and_wait(topics.REQUESTS,
                                     request(app.app_id, t_flag0, [c.registration_id], 0), key=key)
        await producer.send_and_wait(topics.REQUESTS,
                                     request(app.app_id, t_flag1, [c.registration_id], 1), key=key)

        for device in (a, b):
            (push,) = await device.wait_for(1, 20)
            message = message_of(push)
            assert (push.task, message.title, message.body, message.data) == (
                t_online, f"title {t_online}", "hello", {"k": "v"})
        delivered = await eventually(
            lambda: sorted(rid for e in events_of(events, t_online) if e.stage == "delivered"
                           for rid in e.devices()) == sorted([a.registration_id,
                                                              b.registration_id])
            and events_of(events, t_online), 20, "delivered events for a and b")
        assert {(e.channel, e.node) for e in delivered if e.stage == "delivered"} == {
            ("online", node)}

        await eventually(lambda: f"token-c-{uid}" in sandbox.tokens(), 20,
                         "the sandbox vendor to receive c's PushFlag 0 push")
        sent_request = next(r for r in sandbox.requests if r["task_id"] == t_flag0)
        assert sent_request["message"] == {"title": f"title {t_flag0}", "body": "hello",
                                           "data": {"k": "v"}}
        sent = await eventually(lambda: [e for e in events_of(events, t_flag0)
                                         if e.stage == "sent"], 20, "a sent event for c")
        assert (sent[0].registration_id, sent[0].channel) == (c.registration_id, "sandbox")

        lost = await eventually(lambda: [e for e in events_of(events, t_flag1)
                                         if e.stage == "failed"], 20, "c's PushFlag 1 loss")
        assert (lost[0].devices(), lost[0].reason) == ([c.registration_id], "offline")
        assert not [r for r in sandbox.requests if r["task_id"] == t_flag1]
        assert metric(scrape(ports.router_metrics), "herald_router_decisions_total",
                      decision="offline") >= 1

        reasons = await eventually(
            lambda: [dict(r.headers)[topics.DL_REASON].decode() for r in dead.records
                     if r.key == key], 20, "dead letters")
        assert len(reasons) == 2
        assert reasons[0].startswith("invalid push request: JSON is malformed")
        assert "give exactly one of message or template" in reasons[1]
        rejected = await eventually(lambda: events_of(events, f"bad-{uid}"), 20, "rejection")
        assert rejected[0].stage == "rejected"

        assert metric(scrape(ports.gateway_metrics), "herald_gateway_acks_total",
                      matched="true") == 2
        assert metric(scrape(ports.vendor_metrics), "herald_vendor_sends_total",
                      vendor="sandbox", result="sent") == 1
    finally:
        for device in devices:
            await device.close()
        codes = [await role.stop() for role in roles]
        await events.stop()
        await dead.stop()
    assert codes == [0, 0, 0]
