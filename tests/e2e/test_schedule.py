"""Scheduled pushes end to end: through the HTTP API and through Kafka, a push with a send time
waits (listed, cancellable), survives the router that kept it, and reaches the device once, at
its time, whichever of two routers' timers fires it."""

from __future__ import annotations

import json
import time

import httpx

from herald.device import Device
from herald.redis_store import RedisStore
from proto import topics
from proto.events import now_ms
from proto.tasks import TaskState
from tests.api.helpers import auth, refused, serving
from tests.e2e import stack
from tests.harness import REDIS, eventually, eventually_async, free_port, metric, scrape


def push(task: str, rid: str, send_at_ms: int, **extra: object) -> dict[str, object]:
    return {"task_id": task, "registration_ids": [rid], "message": {"title": task},
            "send_at_ms": send_at_ms, **extra}


async def state(store: RedisStore, app_id: str, task: str) -> TaskState | None:
    status = await store.task_status(app_id, task)
    return status.state if status is not None else None


def fired(*ports: int) -> float:
    return sum(metric(scrape(p), "herald_router_timers_total", kind="schedule", event="fired")
               for p in ports)


async def test_a_scheduled_push_survives_its_router_and_fires_once(logdir, uid, app):
    ports = stack.ports()
    gateway = stack.gateway(logdir, f"node-{uid}", ports)
    first = stack.router(logdir, ports, name="router-a")
    device = Device(app.app_id, app.client_key)
    store = RedisStore(REDIS)
    roles = [gateway, first]
    try:
        async with serving(logdir, HERALD_REDIS_URL=REDIS) as api, \
                httpx.AsyncClient(base_url=api.url, timeout=10, auth=auth(app)) as http:
            await gateway.wait_log("gateway listening")
            await first.wait_log("partitions assigned")
            await device.connect(f"ws://127.0.0.1:{ports.gateway}")
            rid = device.registration_id
            send_at = now_ms() + 8_000
            kept, cancelled = f"kept-{uid}", f"cancelled-{uid}"
            for task in (kept, cancelled):
                answer = await http.post("/v1/push", json=push(task, rid, send_at))
                assert answer.status_code == 202, answer.text

            async def both_scheduled() -> bool:
                return {await state(store, app.app_id, t) for t in (kept, cancelled)} == {
                    TaskState.SCHEDULED}
            await eventually_async(both_scheduled, 10, "both pushes to be scheduled")
            listed = (await http.get("/v1/schedules")).json()["scheduled"]
            assert [(s["task_id"], s["send_at_ms"]) for s in listed] == sorted(
                [(kept, send_at), (cancelled, send_at)])
            assert listed[0]["push"]["message"] == {"title": listed[0]["task_id"]}

            answer = await http.delete(f"/v1/schedules/{cancelled}")
            assert answer.status_code == 200 and answer.json()["state"] == "stopped"
            refused(await http.delete(f"/v1/schedules/{cancelled}"), 409, "task_stopped")
            refused(await http.delete(f"/v1/schedules/none-{uid}"), 404, "unknown_task")
            listed = (await http.get("/v1/schedules")).json()["scheduled"]
            assert [s["task_id"] for s in listed] == [kept]

            # The router that kept it dies; two others take over, each polling the timers.
            assert now_ms() < send_at - 1_000, "too slow to kill the router before the time"
            first.kill()
            metrics_ports = [free_port(), free_port()]
            others = [stack.router(logdir, stack.Ports(0, 0, port, 0), name=f"router-{n}")
                      for n, port in zip("bc", metrics_ports, strict=True)]
            roles += others
            for role in others:
                await role.wait_log("partitions assigned")

            await eventually(lambda: device.shown, 20, "the scheduled push")
            assert now_ms() >= send_at
            assert [p.task for p in device.shown] == [kept]

            async def done() -> bool:
                return await state(store, app.app_id, kept) is TaskState.DONE
            await eventually_async(done, 10, "the scheduled task to be done")
            refused(await http.delete(f"/v1/schedules/{kept}"), 409, "task_sent")
            assert (await http.get("/v1/schedules")).json()["scheduled"] == []
            # A push after it: once shown, anything the timer published twice was routed too.
            after = await http.post("/v1/push", json={"registration_ids": [rid],
                                                      "message": {"title": "after"}})
            assert after.status_code == 202
            await eventually(lambda: len(device.shown) == 2, 20, "the push after")
            assert [p.task for p in device.shown] == [kept, after.json()["task_id"]]
            assert device.received == 2
            status = await store.task_status(app.app_id, kept)
            assert status is not None and status.decisions == {"online": 1}
            assert await state(store, app.app_id, cancelled) is TaskState.STOPPED
            assert fired(*metrics_ports) == 1
    finally:
        await device.close()
        await store.close()
        for role in roles:
            await role.stop()


async def test_a_push_scheduled_through_kafka_waits_for_its_time(logdir, uid, app, producer,
                                                                 store):
    async with stack.online(logdir, f"node-{uid}") as online:
        device = await online.device(app)
        task = f"later-{uid}"
        send_at = now_ms() + 3_000
        request = {"app_id": app.app_id, "task_id": task, "audience": {"all": True},
                   "message": {"title": "later"}, "send_at_ms": send_at}
        await producer.send_and_wait(topics.REQUESTS, json.dumps(request).encode(),
                                     key=task.encode())

        async def scheduled() -> bool:
            return await state(store, app.app_id, task) is TaskState.SCHEDULED
        await eventually_async(scheduled, 10, "the push to be scheduled")
        assert device.shown == []
        await eventually(lambda: device.shown, 15, "the scheduled push")
        assert now_ms() >= send_at
        assert [p.task for p in device.shown] == [task]


async def test_send_times_beyond_90_days_are_refused_by_http_and_by_kafka(logdir, uid, app,
                                                                       producer):
    ports = stack.ports()
    router = stack.router(logdir, ports)
    store = RedisStore(REDIS)
    too_far = int(time.time() * 1000) + 91 * 24 * 3600 * 1000
    try:
        async with serving(logdir, HERALD_REDIS_URL=REDIS) as api, \
                httpx.AsyncClient(base_url=api.url, timeout=10, auth=auth(app)) as http:
            body = refused(await http.post("/v1/push", json=push(f"far-{uid}", "r1", too_far)),
                           400, "invalid_push")
            assert "90 days" in body["reason"]
            assert await store.task_status(app.app_id, f"far-{uid}") is None
            await router.wait_log("partitions assigned")
            task = f"far-kafka-{uid}"
            request = {"app_id": app.app_id, **push(task, "r1", too_far)}
            await producer.send_and_wait(topics.REQUESTS, json.dumps(request).encode(),
                                         key=task.encode())

            async def rejected() -> bool:
                return await state(store, app.app_id, task) is TaskState.REJECTED
            await eventually_async(rejected, 15, "the far push to be rejected")
            status = await store.task_status(app.app_id, task)
            assert status is not None and "90 days" in status.reason
            assert (await http.get("/v1/schedules")).json()["scheduled"] == []
    finally:
        await store.close()
        await router.stop()
