"""Push speed end to end: a push with ``speed`` reaches its audience at that many devices per
second, over two routers together, as the vendor test server sees it arrive: through the HTTP
API to 20,000 devices of an all-users audience, and through Kafka to listed devices."""

from __future__ import annotations

import json

import httpx

from herald.apps import new_app
from herald.redis_store import RedisStore
from proto import topics
from proto.tasks import TaskState
from tests.api.helpers import auth, serving
from tests.e2e import stack
from tests.e2e.population import populate
from tests.harness import REDIS, SandboxVendor, eventually, eventually_async, free_port

AUDIENCE = 20_000
SPEED = 4_000


def rate(sandbox: SandboxVendor) -> float:
    """Devices per second from the first request's arrival to the last one's: the devices
    after the first request over the time they took."""
    sizes = [len(r["tokens"]) for r in sandbox.requests]
    return (sum(sizes) - sizes[0]) / (sandbox.times[-1] - sandbox.times[0])


def routers(logdir, count: int) -> list:
    return [stack.router(logdir, stack.Ports(0, 0, free_port(), 0), name=f"router-{n}")
            for n in range(count)]


async def test_an_all_users_push_goes_at_its_speed_over_two_routers(logdir, uid, redis_client,
                                                                   sandbox):
    store = RedisStore(REDIS)
    record = new_app(f"speed-{uid}")
    await store.put_app(record)
    rids = await populate(redis_client, record.app_id, AUDIENCE, vendor="sandbox")
    roles = [*routers(logdir, 2), stack.vendor(logdir, stack.ports(), sandbox.url)]
    try:
        async with serving(logdir, HERALD_REDIS_URL=REDIS) as api, \
                httpx.AsyncClient(base_url=api.url, timeout=10, auth=auth(record)) as http:
            for role in roles[:2]:
                await role.wait_log("partitions assigned")
            await roles[2].wait_log("partitions assigned")
            answer = await http.post("/v1/push", json={
                "audience": {"all": True}, "message": {"title": "paced"}, "speed": SPEED})
            assert answer.status_code == 202, answer.text
            task = answer.json()["task_id"]
            await eventually(lambda: len(sandbox.tokens()) >= AUDIENCE, 30,
                             "every device at the vendor")
            assert sorted(sandbox.tokens()) == sorted(f"t-{rid}" for rid in rids)
            measured = rate(sandbox)
            print(f"measured {measured:.0f} devices/s for a speed of {SPEED}")
            assert abs(measured - SPEED) <= SPEED * 0.1, measured

            async def done() -> bool:
                status = await store.task_status(record.app_id, task)
                return status is not None and status.state is TaskState.DONE
            await eventually_async(done, 10, "the task to be done")
            # Both routers routed a share of the shards.
            shares = [sum(e.get("vendor", 0) for e in role.logs()
                          if e.get("event") == "routing" and e.get("task_id") == task)
                      for role in roles[:2]]
            assert all(shares) and sum(shares) == AUDIENCE, shares
    finally:
        await store.close()
        for role in roles:
            await role.stop()


async def test_listed_devices_published_to_kafka_go_at_their_speed(logdir, uid, redis_client,
                                                                  sandbox, producer):
    store = RedisStore(REDIS)
    record = new_app(f"speed-{uid}")
    await store.put_app(record)
    rids = await populate(redis_client, record.app_id, 1000, vendor="sandbox")
    roles = [*routers(logdir, 1), stack.vendor(logdir, stack.ports(), sandbox.url)]
    try:
        for role in roles:
            await role.wait_log("partitions assigned")
        task = f"listed-{uid}"
        request = {"app_id": record.app_id, "task_id": task, "registration_ids": rids,
                   "message": {"title": "paced"}, "speed": 500}
        await producer.send_and_wait(topics.REQUESTS, json.dumps(request).encode(),
                                     key=task.encode())
        await eventually(lambda: len(sandbox.tokens()) >= 1000, 20, "every device at the vendor")
        assert sorted(sandbox.tokens()) == sorted(f"t-{rid}" for rid in rids)
        measured = rate(sandbox)
        print(f"measured {measured:.0f} devices/s for a speed of 500")
        assert abs(measured - 500) <= 50, measured
    finally:
        await store.close()
        for role in roles:
            await role.stop()
