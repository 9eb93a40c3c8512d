"""Quiet hours end to end: the app's window, in each device's time zone, holds non-urgent
pushes (sent through the HTTP API and through Kafka) until it ends and then delivers them
once; urgent pushes and devices whose local time is outside the window get them at once.

The window is set around the current local time of Australia/Sydney, which keeps daylight
saving time in December (UTC+11, not its standard +10): a router that read the zone without
its DST offset would put the Sydney device an hour before the window, and not hold it. The DST
changes themselves (the gap, the repeated hour) are covered by ``tests/test_policy.py``."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from herald.device import Device
from herald.redis_store import RedisStore
from proto import topics
from proto.events import now_ms
from proto.tasks import TaskState
from tests.api.helpers import auth, serving
from tests.e2e import stack
from tests.harness import REDIS, eventually, eventually_async, metric, scrape

ZONE = "Australia/Sydney"
#: How long the window lasts from now: long enough to see the held pushes wait.
REMAINING_S = 8


def window() -> tuple[dict[str, str], int]:
    """Quiet hours from half an hour ago to ``REMAINING_S`` from now, Sydney time; when they
    end (epoch ms)."""
    local = datetime.now(ZoneInfo(ZONE)).replace(microsecond=0)
    end = local + timedelta(seconds=REMAINING_S)
    hours = {"start": (local - timedelta(minutes=30)).strftime("%H:%M:%S"),
             "end": end.strftime("%H:%M:%S"), "tz": ZONE}
    return hours, int(end.timestamp() * 1000)


async def test_quiet_hours_hold_non_urgent_pushes_in_each_devices_zone(logdir, uid, app,
                                                                      producer):
    ports = stack.ports()
    roles = [stack.gateway(logdir, f"node-{uid}", ports), stack.router(logdir, ports)]
    # In the window: a device in Sydney, and one naming no zone (the window's, Sydney's).
    # Outside: a device in Tokyo, two hours behind Sydney in December.
    quiet = {"sydney": Device(app.app_id, app.client_key, tz=ZONE),
             "no zone": Device(app.app_id, app.client_key)}
    awake = Device(app.app_id, app.client_key, tz="Asia/Tokyo")
    devices = [*quiet.values(), awake]
    store = RedisStore(REDIS)
    try:
        async with serving(logdir, HERALD_REDIS_URL=REDIS) as api, \
                httpx.AsyncClient(base_url=api.url, timeout=10, auth=auth(app)) as http:
            await roles[0].wait_log("gateway listening")
            await roles[1].wait_log("partitions assigned")
            for device in devices:
                await device.connect(f"ws://127.0.0.1:{ports.gateway}")
            hours, ends = window()
            answer = await http.put("/v1/policy", json={"quiet_hours": hours})
            assert answer.status_code == 200, answer.text
            rids = [d.registration_id for d in devices]

            held = await http.post("/v1/push", json={"registration_ids": rids,
                                                     "message": {"title": "held"}})
            assert held.status_code == 202, held.text
            task = held.json()["task_id"]
            urgent, kafka = f"urgent-{uid}", f"kafka-{uid}"
            for name, is_urgent in ((kafka, False), (urgent, True)):
                await producer.send_and_wait(topics.REQUESTS, json.dumps({
                    "app_id": app.app_id, "task_id": name, "registration_ids": rids,
                    "message": {"title": name}, "urgent": is_urgent}).encode(),
                    key=name.encode())

            # The urgent push reaches everyone; the others only the device awake.
            await eventually(lambda: all(d.shown for d in quiet.values())
                             and len(awake.shown) == 3, 10, "the urgent push and the awake one")
            assert now_ms() < ends, "too slow to see the held push wait"
            assert {p.task for p in awake.shown} == {task, kafka, urgent}
            for device in quiet.values():
                assert [p.task for p in device.shown] == [urgent]
            status = await store.task_status(app.app_id, task)
            assert status is not None and status.state is TaskState.RUNNING
            assert status.decisions == {"online": 1}
            assert metric(scrape(ports.router_metrics), "herald_router_held_total",
                          reason="quiet_hours") == 4

            # When the quiet hours end, the held devices get it, once.
            await eventually(lambda: all(len(d.shown) == 3 for d in quiet.values()),
                             REMAINING_S + 10, "the held pushes after the quiet hours")
            assert now_ms() >= ends
            for device in quiet.values():
                assert device.shown[0].task == urgent
                assert {p.task for p in device.shown[1:]} == {task, kafka}

            async def done() -> bool:
                got = await store.task_status(app.app_id, task)
                return got is not None and got.state is TaskState.DONE
            await eventually_async(done, 10, "the held task to be done")
            status = await store.task_status(app.app_id, task)
            assert status is not None and status.decisions == {"online": 3}
            # Out of the window now: a push goes to everyone at once, and nothing came twice.
            after = await http.post("/v1/push", json={"registration_ids": rids,
                                                      "message": {"title": "after"}})
            await eventually(lambda: all(len(d.shown) == 4 for d in devices), 10,
                             "the push after the quiet hours")
            assert [d.received for d in devices] == [4, 4, 4]
            assert after.json()["task_id"] in {p.task for p in awake.shown}
    finally:
        for device in devices:
            await device.close()
        await store.close()
        for role in roles:
            await role.stop()
