"""SIGTERM drains a gateway under 1,000 connections without losing a push: clients are told to
reconnect, reconnect to another node, and every push reaches its device exactly once."""

from __future__ import annotations

import asyncio
import json
import signal

from herald.device import Device
from proto import topics
from tests.e2e import stack
from tests.harness import eventually

DEVICES = 1000
PER_REQUEST = 100


async def test_sigterm_drain_loses_no_push(logdir, uid, producer, app):
    ports_a, ports_b = stack.ports(), stack.ports()
    node_a = stack.gateway(logdir, f"a-{uid}", ports_a, name="gateway-a")
    node_b = stack.gateway(logdir, f"b-{uid}", ports_b, name="gateway-b")
    router = stack.router(logdir, ports_a)
    roles = [node_a, node_b, router]
    url_a = f"ws://127.0.0.1:{ports_a.gateway}"
    url_b = f"ws://127.0.0.1:{ports_b.gateway}"
    devices = [Device(app.app_id, app.client_key) for _ in range(DEVICES)]
    try:
        for role, event in ((node_a, "gateway listening"), (node_b, "gateway listening"),
                            (router, "partitions assigned")):
            await role.wait_log(event)
        for start in range(0, DEVICES, 100):
            await asyncio.gather(*(d.connect(url_a) for d in devices[start:start + 100]))

        byes = []

        async def move(device: Device) -> None:
            await device.closed(60)
            byes.append(device.bye)
            await device.connect(url_b)

        moves = [asyncio.ensure_future(move(d)) for d in devices]
        tasks = {}
        for n, start in enumerate(range(0, DEVICES, PER_REQUEST)):
            batch = devices[start:start + PER_REQUEST]
            task = f"drain-{uid}-{n}"
            tasks.update({d.registration_id: task for d in batch})
            request = {"task_id": task, "app_id": app.app_id, "push_flag": 1,
                       "lifetime_s": 300, "registration_ids": [d.registration_id for d in batch],
                       "message": {"title": task}}
            await producer.send_and_wait(topics.REQUESTS, json.dumps(request).encode())
            if n == DEVICES // PER_REQUEST // 2:
                node_a.proc.send_signal(signal.SIGTERM)  # half the pushes are still to come

        await asyncio.gather(*moves)
        assert len(byes) == DEVICES
        assert all(bye is not None and bye.reason == "shutdown" for bye in byes)
        await eventually(lambda: all(d.shown for d in devices), 90, "every push to arrive")
        assert await node_a.stop() == 0
        assert {len(d.shown) for d in devices} == {1}
        assert all(d.shown[0].task == tasks[d.registration_id] for d in devices)
    finally:
        for start in range(0, DEVICES, 100):
            await asyncio.gather(*(d.close() for d in devices[start:start + 100]))
        for role in roles:
            await role.stop()
