"""Idempotency keys through Kafka: a request repeating a key of its app's task is that task, so
the device sees one push, whichever task id the repeat carries; keys are per app."""

from __future__ import annotations

import json

from proto import topics
from proto.tasks import TaskState
from tests.e2e import stack
from tests.harness import eventually, eventually_async, metric, scrape


async def test_a_repeated_key_reaches_the_device_once(logdir, uid, app, producer, store):
    async with stack.online(logdir, f"node-{uid}") as online:
        ports = online.ports
        device = await online.device(app)
        key = f"order-{uid}"
        for task in (f"first-{uid}", f"again-{uid}", f"first-{uid}"):
            request = {"task_id": task, "app_id": app.app_id, "idempotency_key": key,
                       "registration_ids": [device.registration_id],
                       "message": {"title": task}}
            await producer.send_and_wait(topics.REQUESTS, json.dumps(request).encode(),
                                         key=key.encode())
        # A push without a key after them, on the same partition: once it is shown, the
        # three before it have been routed.
        after = {"task_id": f"after-{uid}", "app_id": app.app_id,
                 "registration_ids": [device.registration_id], "message": {"title": "after"}}
        await producer.send_and_wait(topics.REQUESTS, json.dumps(after).encode(),
                                     key=key.encode())
        await eventually(lambda: [p.task for p in device.shown][-1:] == [f"after-{uid}"], 20,
                         "the push after the repeats")
        assert [p.task for p in device.shown] == [f"first-{uid}", f"after-{uid}"]

        async def done() -> bool:
            got = await store.task_status(app.app_id, f"first-{uid}")
            return got is not None and got.state is TaskState.DONE
        await eventually_async(done, 10, "the first task to be done")
        assert await store.task_status(app.app_id, f"again-{uid}") is None
        assert metric(scrape(ports.router_metrics), "herald_router_records_total",
                      result="repeated") == 1
