"""Online delivery and its fallbacks, end to end: ack timeouts, the offline inbox, a node
killed with SIGKILL, and duplicate logins across nodes."""

from __future__ import annotations

import json

import pytest

from herald.device import Device
from herald.redis_store import RedisStore
from proto import keys, topics
from proto.frames import CloseCode
from tests.e2e import stack
from tests.e2e.test_walking_skeleton import events_of
from tests.harness import REDIS, eventually, eventually_async, metric, scrape


def push(app: str, task: str, rids: list[str], *, flag: int, lifetime: int = 0) -> bytes:
    return json.dumps({"task_id": task, "app_id": app, "registration_ids": rids,
                       "push_flag": flag, "lifetime_s": lifetime,
                       "message": {"title": task}}).encode()


@pytest.fixture
async def pipeline(logdir, uid, sandbox):
    """One gateway (ack timeout 0.5 s), one router (inbox bound 3), the sandbox vendor."""
    ports = stack.ports()
    roles = [stack.gateway(logdir, f"node-{uid}", ports, HERALD_ACK_TIMEOUT_S="0.5"),
             stack.router(logdir, ports, HERALD_INBOX_MAX="3"),
             stack.vendor(logdir, ports, sandbox.url)]
    await roles[0].wait_log("gateway listening")
    await roles[1].wait_log("partitions assigned")
    await roles[2].wait_log("partitions assigned")
    yield ports, roles
    for role in roles:
        await role.stop()


async def test_no_ack_in_time_takes_the_offline_path(pipeline, producer, app, sandbox, events,
                                                     store, uid):
    ports, _ = pipeline
    url = f"ws://127.0.0.1:{ports.gateway}"
    vendor_dev = Device(app.app_id, app.client_key, vendor="sandbox", vendor_token=f"v-{uid}",
                        acking=False)
    waiting_dev = Device(app.app_id, app.client_key, acking=False)
    lost_dev = Device(app.app_id, app.client_key, acking=False)
    for device in (vendor_dev, waiting_dev, lost_dev):
        await device.connect(url)
    t_vendor, t_wait, t_lost = f"v-{uid}", f"w-{uid}", f"l-{uid}"
    await producer.send_and_wait(topics.REQUESTS,
                                 push(app.app_id, t_vendor, [vendor_dev.registration_id], flag=0))
    await producer.send_and_wait(topics.REQUESTS, push(
        app.app_id, t_wait, [waiting_dev.registration_id], flag=1, lifetime=300))
    await producer.send_and_wait(topics.REQUESTS,
                                 push(app.app_id, t_lost, [lost_dev.registration_id], flag=1))

    # PushFlag 0: written, not acked, so it goes through the vendor channel.
    await eventually(lambda: f"v-{uid}" in sandbox.tokens(), 20, "the vendor fallback")
    assert vendor_dev.received == 1
    # PushFlag 1 with a lifetime: kept in the inbox, and (the device being online) sent again.
    await eventually(lambda: waiting_dev.received >= 2, 20, "the inbox copy to be written")
    assert [s.msg_id for s in await store.inbox_read(app.app_id, waiting_dev.registration_id)
            ] == [t_wait]
    # PushFlag 1 without a lifetime: lost, with the reason.
    lost = await eventually(lambda: [e for e in events_of(events, t_lost)
                                     if e.stage == "failed"], 20, "the ack timeout loss")
    assert (lost[0].devices(), lost[0].reason) == ([lost_dev.registration_id], "ack_timeout")
    assert metric(scrape(ports.gateway_metrics), "herald_gateway_ack_timeouts_total") >= 3

    # The waiting device comes back acking: the inbox delivers once, and the ACK empties it.
    await waiting_dev.close()
    back = Device(app.app_id, app.client_key, registration_id=waiting_dev.registration_id,
                  token=waiting_dev.token)
    await back.connect(url)
    (again,) = await back.wait_for(1, 20)
    assert again.task == t_wait

    async def inbox_empty() -> bool:
        return not await store.inbox_read(app.app_id, back.registration_id)

    await eventually_async(inbox_empty, 10, "the ACK to remove the inbox copy")
    delivered = await eventually(lambda: [e for e in events_of(events, t_wait)
                                          if e.stage == "delivered"], 20, "delivered event")
    assert delivered[0].registration_id == back.registration_id
    for device in (vendor_dev, lost_dev, back):
        await device.close()


async def test_offline_inbox_order_bound_and_expiry(pipeline, producer, app, events, store,
                                                    redis_client, uid):
    ports, _ = pipeline
    url = f"ws://127.0.0.1:{ports.gateway}"
    device = Device(app.app_id, app.client_key)
    await device.connect(url)
    await device.close()
    rid = device.registration_id

    async def offline() -> bool:
        return await redis_client.get(keys.presence(app.app_id, rid)) is None

    await eventually_async(offline, 10, "the device to be offline")
    key = rid.encode()  # one partition, so the router stores them in this order
    tasks = [f"t{i}-{uid}" for i in range(1, 5)]
    for task in tasks:
        await producer.send_and_wait(topics.REQUESTS,
                                     push(app.app_id, task, [rid], flag=1, lifetime=300), key=key)
    short = f"short-{uid}"
    await producer.send_and_wait(topics.REQUESTS,
                                 push(app.app_id, short, [rid], flag=1, lifetime=1), key=key)
    stored = await eventually(lambda: [e for e in events_of(events, short)
                                       if e.stage == "stored"], 20, "the last push stored")
    assert stored
    # The inbox holds 3: the oldest two were evicted, each reported.
    evicted = await eventually(
        lambda: sorted(e.task_id for t in tasks[:2] for e in events_of(events, t)
                       if e.reason == "inbox_evicted"), 20, "evictions")
    assert evicted == sorted(tasks[:2])

    async def short_expired() -> bool:
        return await redis_client.exists(keys.message(app.app_id, short)) == 0

    await eventually_async(short_expired, 10, "the 1 s push to expire")
    await device.connect(url)
    shown = await device.wait_for(2, 20)
    assert [p.task for p in shown] == tasks[2:]

    async def inbox_empty() -> bool:
        return await redis_client.zcard(keys.inbox(app.app_id, rid)) == 0

    await eventually_async(inbox_empty, 10, "acks to empty the inbox")
    await device.close()
    await device.connect(url)  # nothing is delivered twice
    await device.ping()
    assert [p.task for p in device.shown] == tasks[2:] and device.received == 2
    await device.close()


async def test_sigkill_of_a_node_sends_its_devices_pushes_down_the_fallback_path(
        logdir, uid, producer, app, sandbox, redis_client):
    ports = stack.ports()
    node = f"doomed-{uid}"
    gateway = stack.gateway(logdir, node, ports)
    router = stack.router(logdir, ports)
    vendor = stack.vendor(logdir, ports, sandbox.url)
    try:
        await gateway.wait_log("gateway listening")
        await router.wait_log("partitions assigned")
        await vendor.wait_log("partitions assigned")
        device = Device(app.app_id, app.client_key, vendor="sandbox", vendor_token=f"k-{uid}")
        await device.connect(f"ws://127.0.0.1:{ports.gateway}")
        gateway.kill()
        store = RedisStore(REDIS)

        async def node_dead() -> bool:
            return await store.nodes_alive([node]) == [False]

        await eventually_async(node_dead, 10, "the node's liveness to lapse")
        await store.close()
        # Presence still names the dead node (its TTL runs 30 s), but the router no longer
        # trusts it: the push goes to the vendor.
        assert await redis_client.get(keys.presence(app.app_id, device.registration_id))
        await producer.send_and_wait(topics.REQUESTS, push(
            app.app_id, f"k-{uid}", [device.registration_id], flag=0))
        await eventually(lambda: f"k-{uid}" in sandbox.tokens(), 20, "the vendor fallback")
    finally:
        if gateway.proc.poll() is None:
            gateway.kill()
        for role in (router, vendor):
            await role.stop()


async def test_login_on_another_node_closes_the_first(logdir, uid, app):
    ports_a, ports_b = stack.ports(), stack.ports()
    node_a = stack.gateway(logdir, f"a-{uid}", ports_a, name="gateway-a")
    node_b = stack.gateway(logdir, f"b-{uid}", ports_b, name="gateway-b")
    try:
        await node_a.wait_log("gateway listening")
        await node_b.wait_log("gateway listening")
        first = Device(app.app_id, app.client_key)
        await first.connect(f"ws://127.0.0.1:{ports_a.gateway}")
        second = Device(app.app_id, app.client_key, registration_id=first.registration_id,
                        token=first.token)
        await second.connect(f"ws://127.0.0.1:{ports_b.gateway}")
        assert await first.closed(10) == (CloseCode.REPLACED, "replaced by a newer connection")
        await second.close()
    finally:
        for role in (node_a, node_b):
            await role.stop()


async def test_pass_through_message_and_click(pipeline, producer, app, events, uid):
    ports, _ = pipeline
    device = Device(app.app_id, app.client_key)
    await device.connect(f"ws://127.0.0.1:{ports.gateway}")
    task = f"data-{uid}"
    request = {"task_id": task, "app_id": app.app_id, "registration_ids": [device.registration_id],
               "message": {"kind": "data", "data": {"sync": 1, "etag": "abc"}}}
    await producer.send_and_wait(topics.REQUESTS, json.dumps(request).encode())
    (received,) = await device.wait_for(1, 20)
    assert received.msg == {"kind": "data", "data": {"sync": 1, "etag": "abc"}}
    await device.click(received.mid)
    clicked = await eventually(lambda: [e for e in events_of(events, task)
                                        if e.stage == "clicked"], 20, "the clicked event")
    assert (clicked[0].registration_id, clicked[0].channel) == (device.registration_id, "online")
    assert metric(scrape(ports.gateway_metrics), "herald_gateway_clicks_total") == 1
    await device.close()
