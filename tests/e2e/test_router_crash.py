"""A router killed between consuming a push and handing it off loses nothing."""

from __future__ import annotations

import json

from herald.device import Device
from proto import topics
from proto.frames import message_of
from tests.e2e import stack
from tests.harness import eventually, private_groups


async def test_sigkill_before_handoff_still_delivers(producer, redis_client, logdir, uid,
                                                     app):
    ports = stack.ports()
    gateway = stack.gateway(logdir, f"node-{uid}", ports)
    # Groups of its own: the killed router's membership must not hold other tests' partitions.
    groups = await private_groups()
    first = stack.router(logdir, ports, "router-1", **groups)
    roles = [gateway, first]
    device = Device(app.app_id, app.client_key)
    paused = False
    try:
        await gateway.wait_log("gateway listening")
        await first.wait_log("partitions assigned")
        await device.connect(f"ws://127.0.0.1:{ports.gateway}")
        # Redis stops executing writes: the router can still read presence, but its hand-off
        # (XADD to the node inbox) hangs, so the kill lands between consuming and handing off.
        await redis_client.execute_command("CLIENT", "PAUSE", 60_000, "WRITE")
        paused = True
        task = f"crash-{uid}"
        request = {"task_id": task, "app_id": app.app_id,
                   "registration_ids": [device.registration_id],
                   "message": {"title": "survives"}}
        await producer.send_and_wait(topics.REQUESTS, json.dumps(request).encode())
        await first.wait_log("routing", task_id=task)
        assert not [line for line in first.logs() if task in line.get("task_ids", [])]
        first.kill()
        await redis_client.execute_command("CLIENT", "UNPAUSE")
        paused = False
        assert device.shown == []

        second = stack.router(logdir, ports, "router-2", **groups)
        roles.append(second)
        shown = await device.wait_for(1, timeout_s=60)
        assert [(p.task, message_of(p).title) for p in shown] == [(task, "survives")]
        # The delivery came from the second router's hand-off, not from a write left over.
        await eventually(lambda: [line for line in second.logs()
                                  if task in line.get("task_ids", [])], 10,
                         "the second router to hand the push off")
    finally:
        if paused:
            await redis_client.execute_command("CLIENT", "UNPAUSE")
        await device.close()
        for role in roles:
            if role.proc.poll() is None:
                await role.stop()
    assert len(device.shown) == 1
