"""Frequency caps end to end: a cap of 2 pushes per account per hour, set through the HTTP API
(``herald api``), then non-urgent pushes and an urgent one to accounts with online devices,
through the real gateway, router and stats consumer: by Kafka (``push.requests``, listed
devices: the router's direct path) and by ``POST /v1/push`` (an accounts audience: the
fan-out path). Each device shows the first two pushes and the urgent one, never the third;
the third is a ``failed`` event with reason ``frequency_capped`` for exactly its devices, its
task's stats count them lost for that reason, and the router's held metric counts devices."""

from __future__ import annotations

import json

import httpx

from herald.device import Device
from herald.redis_store import RedisStore
from proto import topics
from proto.events import Reason, Stage, decode_event
from tests.api.helpers import auth, start_api
from tests.e2e import stack
from tests.harness import (
    REDIS,
    Role,
    TopicWatcher,
    eventually,
    eventually_async,
    free_port,
    metric,
    scrape,
)


def capped_events(watcher: TopicWatcher, app_id: str) -> list[tuple[str, list[str]]]:
    """(task, devices) of every ``frequency_capped`` event of the app seen so far."""
    events = [decode_event(record.value) for record in watcher.records]
    return [(e.task_id, sorted(e.devices())) for e in events
            if e.app_id == app_id and e.stage is Stage.FAILED
            and e.reason == Reason.FREQUENCY_CAPPED]


def titles(device: Device) -> list[str]:
    return [push.msg["title"] for push in device.shown]


async def test_the_third_push_of_the_hour_is_held_back(logdir, uid, app, producer):
    ports = stack.ports()
    stats_port = free_port()
    roles = [stack.gateway(logdir, f"node-{uid}", ports), stack.router(logdir, ports),
             Role(["stats"], {"HERALD_METRICS_PORT": str(stats_port)}, logdir / "stats.log")]
    api = await start_api(logdir, HERALD_REDIS_URL=REDIS)
    roles.append(api.role)
    events = await TopicWatcher(topics.EVENTS).start()
    store = RedisStore(REDIS)
    phone, tablet = (Device(app.app_id, app.client_key) for _ in range(2))
    laptop = Device(app.app_id, app.client_key, platform="ios")
    devices = [phone, tablet, laptop]
    http = httpx.AsyncClient(base_url=api.url, timeout=10, auth=auth(app))
    try:
        await roles[0].wait_log("gateway listening")
        await roles[1].wait_log("partitions assigned")
        policy = await http.put("/v1/policy", json={
            "frequency_cap": {"count": 2, "period_s": 3600}})
        assert policy.status_code == 200, policy.text
        for device, account in ((phone, "alice"), (tablet, "alice"), (laptop, "bob")):
            await device.connect(f"ws://127.0.0.1:{ports.gateway}")
            assert (await device.bind(f"{account}-{uid}")).account == f"{account}-{uid}"
        alice = sorted([phone.registration_id, tablet.registration_id])

        # Through Kafka, to alice's two devices by registration id, in order (one key).
        for n, urgent in ((1, False), (2, False), (3, False), (4, True)):
            request = {"task_id": f"k{n}-{uid}", "app_id": app.app_id, "urgent": urgent,
                       "registration_ids": alice, "message": {"title": f"k{n}"}}
            await producer.send_and_wait(topics.REQUESTS, json.dumps(request).encode(),
                                         key=uid.encode())
        for device in (phone, tablet):
            await device.wait_for(3, 20)
        # The urgent push came after the third on the same partition, so the third was
        # routed before it: it will not come later.
        assert titles(phone) == titles(tablet) == ["k1", "k2", "k4"]
        await eventually(lambda: capped_events(events, app.app_id), 10,
                         "the frequency_capped event")
        assert capped_events(events, app.app_id) == [(f"k3-{uid}", alice)]

        # Through the HTTP API, to bob's account (a fan-out), one push at a time: pushes of
        # different tasks travel on different partitions.
        async def push(n: int, urgent: bool = False) -> str:
            response = await http.post("/v1/push", json={
                "task_id": f"h{n}-{uid}", "audience": {"accounts": [f"bob-{uid}"]},
                "urgent": urgent, "message": {"title": f"h{n}"}})
            assert response.status_code == 202, response.text
            return response.json()["task_id"]

        for n in (1, 2):
            await push(n)
            await laptop.wait_for(n, 20)
        held = await push(3)
        await eventually(lambda: len(capped_events(events, app.app_id)) == 2, 20,
                         "the second frequency_capped event")
        assert capped_events(events, app.app_id)[1] == (held, [laptop.registration_id])
        await push(4, urgent=True)
        await laptop.wait_for(3, 20)
        assert titles(laptop) == ["h1", "h2", "h4"]
        assert titles(phone) == ["k1", "k2", "k4"]

        # Counted: per device in the router's metric, in the tasks' decisions and stats.
        assert metric(scrape(ports.router_metrics), "herald_router_held_total",
                      reason="frequency_capped") == 3

        async def stats_of(task: str, devices: int):
            stats = await store.task_stats(app.app_id, task)
            if stats is not None and stats.lost.get("frequency_capped") == devices:
                return stats
            return None

        stats = await eventually_async(lambda: stats_of(f"k3-{uid}", 2), 20, "k3's stats")
        assert stats.funnel.targeted == 2 and stats.funnel.sendable == 0
        assert stats.losses == {"routing": {"frequency_capped": 2}}
        stats = await eventually_async(lambda: stats_of(held, 1), 20, "h3's stats")
        assert stats.platforms["ios"].targeted == 1 and stats.funnel.sent == 0
        assert (await store.task_status(app.app_id, f"k3-{uid}")).decisions == {
            "frequency_capped": 2}
        assert (await store.task_status(app.app_id, f"k4-{uid}")).decisions == {"online": 2}
    finally:
        await http.aclose()
        for device in devices:
            await device.close()
        await events.stop()
        await store.close()
        for role in roles:
            await role.stop()
