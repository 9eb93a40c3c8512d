"""One push through gateway, router and the sandbox vendor, on the real Redis and Kafka."""

from __future__ import annotations

import json

from herald.device import Device
from proto import keys, topics
from proto.events import decode_event
from tests.e2e import stack
from tests.harness import TopicWatcher, eventually, eventually_async, metric, scrape


def _events(watcher: TopicWatcher, task_id: str) -> list:
    return [e for e in (decode_event(r.value) for r in watcher.records) if e.task_id == task_id]


def _request(app: str, task: str, rids: list[str], flag: int) -> bytes:
    return json.dumps({"task_id": task, "app_id": app, "registration_ids": rids,
                       "push_flag": flag, "message": {"title": f"title {task}", "body": "hello",
                                                      "data": {"k": "v"}}}).encode()


async def test_online_offline_and_dead_letter(producer, redis_client, sandbox, logdir, uid):
    events = await TopicWatcher(topics.EVENTS).start()
    dead = await TopicWatcher(topics.DEADLETTER).start()
    ports = stack.ports()
    node = f"node-{uid}"
    roles = [stack.gateway(logdir, node, ports), stack.router(logdir, ports),
             stack.vendor(logdir, ports, sandbox.url)]
    gateway, router, vendor = roles
    devices: list[Device] = []
    try:
        await gateway.wait_log("gateway listening")
        await router.wait_log("partitions assigned")
        await vendor.wait_log("partitions assigned")
        app = f"app-{uid}"
        url = f"ws://127.0.0.1:{ports.gateway}"
        a, b = Device(app, "dev-a"), Device(app, "dev-b")
        c = Device(app, "dev-c", vendor="sandbox", vendor_token=f"token-c-{uid}")
        devices += [a, b, c]
        for device in devices:
            await device.connect(url)
        await c.close()
        assert await redis_client.get(keys.presence(app, "dev-a")) is not None
        presence_c = keys.presence(app, "dev-c")

        async def c_gone() -> bool:
            return await redis_client.get(presence_c) is None

        await eventually_async(c_gone, 10, "c's presence to go when it disconnects")

        key = app.encode()  # one partition: the garbage sits in front of the real pushes
        t_online, t_flag0, t_flag1 = f"on-{uid}", f"f0-{uid}", f"f1-{uid}"
        await producer.send_and_wait(topics.REQUESTS, b"\x00 not a push request", key=key)
        await producer.send_and_wait(topics.REQUESTS, b'{"task_id": "bad-' + uid.encode()
                                     + b'", "app_id": "x"}', key=key)
        await producer.send_and_wait(topics.REQUESTS,
                                     _request(app, t_online, ["dev-a", "dev-b"], 0), key=key)
        await producer.send_and_wait(topics.REQUESTS, _request(app, t_flag0, ["dev-c"], 0),
                                     key=key)
        await producer.send_and_wait(topics.REQUESTS, _request(app, t_flag1, ["dev-c"], 1),
                                     key=key)

        for device in (a, b):
            shown = await device.wait_for(1, 20)
            assert [(p.task, p.title, p.body, p.data) for p in shown] == [
                (t_online, f"title {t_online}", "hello", {"k": "v"})]
        delivered = await eventually(
            lambda: sorted(e.registration_id for e in _events(events, t_online)
                           if e.stage == "delivered") == ["dev-a", "dev-b"] and
            _events(events, t_online), 20, "delivered events for a and b")
        assert {e.channel for e in delivered} == {"online"}
        assert {e.node for e in delivered} == {node}

        await eventually(lambda: f"token-c-{uid}" in sandbox.tokens(), 20,
                         "the sandbox vendor to receive c's PushFlag 0 push")
        request = next(r for r in sandbox.requests if r["task_id"] == t_flag0)
        assert request["message"] == {"title": f"title {t_flag0}", "body": "hello",
                                      "data": {"k": "v"}}
        sent = await eventually(lambda: [e for e in _events(events, t_flag0)
                                         if e.stage == "sent"], 20, "a sent event for c")
        assert (sent[0].registration_id, sent[0].channel) == ("dev-c", "sandbox")

        lost = await eventually(lambda: [e for e in _events(events, t_flag1)
                                         if e.stage == "failed"], 20, "c's PushFlag 1 loss")
        assert (lost[0].registration_id, lost[0].reason) == ("dev-c", "offline")
        assert not [r for r in sandbox.requests if r["task_id"] == t_flag1]
        assert metric(scrape(ports.router_metrics), "herald_router_decisions_total",
                      decision="offline") >= 1

        reasons = await eventually(
            lambda: [dict(r.headers)[topics.DL_REASON].decode() for r in dead.records
                     if r.key == key], 20, "dead letters")
        assert len(reasons) == 2
        assert reasons[0].startswith("invalid push request: JSON is malformed")
        assert "registration_ids" in reasons[1]
        rejected = await eventually(lambda: _events(events, f"bad-{uid}"), 20, "rejected event")
        assert rejected[0].stage == "rejected"

        gw_metrics = scrape(ports.gateway_metrics)
        assert metric(gw_metrics, "herald_gateway_acks_total", matched="true") == 2
        assert metric(scrape(ports.vendor_metrics), "herald_vendor_sends_total",
                      vendor="sandbox", result="sent") == 1
    finally:
        for device in devices:
            await device.close()
        codes = [await role.stop() for role in roles]
        await events.stop()
        await dead.stop()
    assert codes == [0, 0, 0]
