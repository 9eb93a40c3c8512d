"""Templates end to end, on a real gateway, router and API: a template created over HTTP and
pushed by HTTP and straight through Kafka reaches online devices filled in, each in its
language; a Kafka push whose template does not fit (a missing variable, an unknown template) is
dead-lettered with its reason, its task ``rejected``, nothing shown, and the push after it on
the same partition is delivered."""

from __future__ import annotations

import json

import httpx

from herald.device import Device
from herald.redis_store import RedisStore
from proto import topics
from proto.events import decode_event
from proto.frames import message_of
from proto.tasks import TaskState
from tests.api.helpers import auth, start_api
from tests.e2e import stack
from tests.harness import REDIS, TopicWatcher, eventually, eventually_async

TEMPLATE = {
    "template_id": "greeting",
    "message": {"title": "Hello {{name}}", "body": "{{count}} new messages",
                "locales": {"de": {"title": "Hallo {{name}}",
                                   "body": "{{count}} neue Nachrichten"}}},
    "variables": {"name": {}, "count": {"default": 1}},
}


async def test_templated_pushes_reach_devices_filled_in(logdir, uid, app, producer):
    ports = stack.ports()
    roles = [stack.gateway(logdir, f"node-{uid}", ports), stack.router(logdir, ports)]
    dead = await TopicWatcher(topics.DEADLETTER).start()
    events = await TopicWatcher(topics.EVENTS).start()
    api = await start_api(logdir, HERALD_REDIS_URL=REDIS)
    roles.append(api.role)
    english = Device(app.app_id, app.client_key, locale="en-US")
    german = Device(app.app_id, app.client_key, locale="de-DE")
    store = RedisStore(REDIS)
    try:
        await roles[0].wait_log("gateway listening")
        await roles[1].wait_log("partitions assigned")
        url = f"ws://127.0.0.1:{ports.gateway}"
        for device in (english, german):
            await device.connect(url)
        rids = [english.registration_id, german.registration_id]
        async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
            created = await http.post("/v1/templates", json=TEMPLATE, auth=auth(app))
            assert created.status_code == 201, created.text
            by_http = await http.post("/v1/push", auth=auth(app), json={
                "task_id": f"http-{uid}", "registration_ids": rids,
                "template": {"template_id": "greeting", "variables": {"name": "Ann"}}})
            assert by_http.status_code == 202, by_http.text
        expected = {f"http-{uid}": {"en": ("Hello Ann", "1 new messages"),
                                    "de": ("Hallo Ann", "1 neue Nachrichten")}}
        for lang, device in (("en", english), ("de", german)):
            (push,) = await device.wait_for(1, 20)
            message = message_of(push)
            assert (message.title, message.body) == expected[push.task][lang]
            assert message.locales == {}

        # Straight through Kafka: one that fits, one missing a variable, one naming a template
        # the app does not have, then one that fits, all on one partition (one key).
        def request(task: str, **template) -> bytes:
            return json.dumps({"task_id": task, "app_id": app.app_id, "registration_ids": rids,
                               "template": {"template_id": "greeting", **template}}).encode()

        key = f"key-{uid}".encode()
        missing, unknown = f"missing-{uid}", f"unknown-{uid}"
        for value in (request(f"kafka-{uid}", variables={"name": "Bo", "count": 3}),
                      request(missing, variables={"count": 2}),
                      request(unknown, template_id="nope", variables={"name": "Cy"}),
                      request(f"after-{uid}", variables={"name": "Di"})):
            await producer.send_and_wait(topics.REQUESTS, value, key=key)
        expected[f"kafka-{uid}"] = {"en": ("Hello Bo", "3 new messages"),
                                    "de": ("Hallo Bo", "3 neue Nachrichten")}
        expected[f"after-{uid}"] = {"en": ("Hello Di", "1 new messages"),
                                    "de": ("Hallo Di", "1 neue Nachrichten")}
        for lang, device in (("en", english), ("de", german)):
            pushes = await device.wait_for(3, 20)
            assert [p.task for p in pushes] == [f"http-{uid}", f"kafka-{uid}", f"after-{uid}"]
            for push in pushes:
                message = message_of(push)
                assert (message.title, message.body) == expected[push.task][lang]

        def dead_letters() -> dict[str, str] | None:
            found = {task: dict(r.headers)[topics.DL_REASON].decode() for r in dead.records
                     for task in (missing, unknown) if task.encode() in r.value}
            return found if len(found) == 2 else None
        reasons = await eventually(dead_letters, 20, "two dead letters")
        assert reasons[missing].startswith("missing_variable: template 'greeting' needs "
                                           "variable 'name'"), reasons
        assert reasons[unknown].startswith("unknown_template: template 'nope'"), reasons
        for task in (missing, unknown):
            rejected = await eventually(lambda task=task: [
                decode_event(r.value) for r in events.records
                if r.key == task.encode() and decode_event(r.value).stage == "rejected"], 20,
                f"the rejection of {task}")
            assert rejected[0].app_id == app.app_id

            async def is_rejected(task: str = task) -> bool:
                got = await store.task_status(app.app_id, task)
                return got is not None and got.state is TaskState.REJECTED
            await eventually_async(is_rejected, 10, f"task {task} rejected")
            status = await store.task_status(app.app_id, task)
            assert status is not None and status.reason == reasons[task]
        # Nothing of the rejected pushes reached a device, and no device event names them.
        for device in (english, german):
            assert len(device.shown) == 3
        assert not [r for r in events.records if r.key in (missing.encode(), unknown.encode())
                    and decode_event(r.value).stage != "rejected"]
    finally:
        for device in (english, german):
            await device.close()
        await store.close()
        await dead.stop()
        await events.stop()
        for role in roles:
            await role.stop()
