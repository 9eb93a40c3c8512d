"""Languages end to end: one push with content in several languages reaches each device in its
locale's language through the fallback chain (region, script, language, default), online and
through a vendor channel."""

from __future__ import annotations

import json

from herald.device import Device
from herald.redis_store import RedisStore
from proto import topics
from proto.frames import message_of
from proto.tasks import TaskState
from tests.e2e import stack
from tests.harness import REDIS, eventually, eventually_async

LOCALES = {"zh-Hant": {"title": "繁體"}, "zh": {"title": "中文", "body": "简体"},
           "en-US": {"title": "Howdy"}, "pt": {"body": "Olá"}}
#: A device's locale -> the title and body it must show.
EXPECTED = {
    "zh-Hant-TW": ("繁體", "default"), "zh_Hant_HK": ("繁體", "default"),
    "zh-Hans-CN": ("中文", "简体"), "zh": ("中文", "简体"), "en-US": ("Howdy", "default"),
    "en-GB": ("Hello", "default"), "pt-BR": ("Hello", "Olá"), "fr-FR": ("Hello", "default"),
    "": ("Hello", "default"),
}


async def test_each_device_gets_its_language(logdir, uid, app, sandbox, producer):
    ports = stack.ports()
    roles = [stack.gateway(logdir, f"node-{uid}", ports), stack.router(logdir, ports),
             stack.vendor(logdir, ports, sandbox.url)]
    url = f"ws://127.0.0.1:{ports.gateway}"
    devices = {locale: Device(app.app_id, app.client_key, locale=locale) for locale in EXPECTED}
    offline = Device(app.app_id, app.client_key, locale="zh-Hant-MO", vendor="sandbox",
                     vendor_token=f"v-{uid}")
    store = RedisStore(REDIS)
    task = f"lang-{uid}"
    try:
        await roles[0].wait_log("gateway listening")
        for role in roles[1:]:
            await role.wait_log("partitions assigned")
        await offline.connect(url)
        await offline.close()
        for device in devices.values():
            await device.connect(url)

        async def gone() -> bool:
            (state,) = await store.lookup([(app.app_id, offline.registration_id)])
            return state.presence is None
        await eventually_async(gone, 10, "the vendor device to be offline")
        rids = [d.registration_id for d in (*devices.values(), offline)]
        request = {"task_id": task, "app_id": app.app_id, "registration_ids": rids,
                   "message": {"title": "Hello", "body": "default", "locales": LOCALES}}
        await producer.send_and_wait(topics.REQUESTS, json.dumps(request).encode(),
                                     key=task.encode())
        for locale, device in devices.items():
            (push,) = await device.wait_for(1, 20)
            message = message_of(push)
            assert (message.title, message.body) == EXPECTED[locale], locale
            assert message.locales == {} and push.task == task
        sent = await eventually(lambda: [r for r in sandbox.requests if r["task_id"] == task],
                                20, "the vendor request")
        assert (sent[0]["message"]["title"], sent[0]["tokens"]) == ("繁體", [f"v-{uid}"])
        assert "locales" not in sent[0]["message"]

        async def done() -> bool:
            got = await store.task_status(app.app_id, task)
            return got is not None and got.state is TaskState.DONE
        await eventually_async(done, 10, "the task to be done")
        status = await store.task_status(app.app_id, task)
        assert status is not None
        assert status.decisions == {"online": len(EXPECTED), "vendor": 1}
    finally:
        for device in devices.values():
            await device.close()
        await store.close()
        for role in roles:
            await role.stop()
