"""``herald receipts`` as a process on the real Redis and Kafka.

First, the role alone: receipts of all five vendors, posted as each vendor posts them, become
delivered and failed events on push.events; forged, malformed and unknown-app posts are
refused, counted by result, and publish nothing. Then the whole way round with Xiaomi: a push
goes through a real router and a real ``herald vendor xiaomi`` to the fake MiPush, which gets
the receipt request; the receipt MiPush would post with what it got (the URL, the signed param)
is taken by the real receipt role and becomes the device's delivered and clicked events.

Devices are registered in the store as the gateway registers them, which indexes their vendor
tokens for the role to find them by.
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from herald.redis_store import RedisStore
from proto import topics
from tests.e2e.test_vendors_e2e import _stop
from tests.harness import REDIS, Role, TopicWatcher, eventually, free_port, metric, scrape
from tests.vendors.receipts import helpers
from tests.vendors.servers.base import serve
from tests.vendors.servers.xiaomi import make_app as fake_mipush
from vendors.receipts import tags

HW_USER, HW_SECRET = "herald", base64.b64encode(b"huawei callback key, 32 bytes...").decode()
CREDENTIALS = {
    "huawei": {"client_id": "1081", "client_secret": "hs", "receipt_user": HW_USER,
               "receipt_secret": HW_SECRET},
    "honor": {"app_id": "1044", "client_id": "c", "client_secret": "s", "receipt_key": "hk"},
    "xiaomi": {"app_secret": "xm-secret", "package_name": "com.example.herald"},
    "oppo": {"app_key": "ok", "master_secret": "om"},
    "vivo": {"app_id": "1004", "app_key": "vk", "app_secret": "vs"},
}
KEYS = {"honor": "hk", "xiaomi": "xm-secret", "oppo": "om", "vivo": "vs"}


def _receipts(logdir, name: str = "receipts") -> tuple[Role, int, int]:
    port, metrics_port = free_port(), free_port()
    role = Role(["receipts"], {"HERALD_PORT": str(port), "HERALD_METRICS_PORT": str(metrics_port)},
                logdir / f"{name}.log")
    return role, port, metrics_port


def _post_body(vendor: str, app_id: str, task: str, delivered: bool,
               tokens: list[str]) -> tuple[bytes, dict[str, str]]:
    """A receipt post of ``vendor`` for ``tokens`` of ``task``, signed as it would be."""
    if vendor == "huawei":
        body, headers = helpers.receipt_post(vendor, task, tokens, delivered=delivered)
        return body, {**headers, **helpers.huawei_header(HW_USER, HW_SECRET)}
    tag = tags.tag(KEYS[vendor], vendor, app_id, task)
    return helpers.receipt_post(vendor, tag, tokens, delivered=delivered)


async def test_the_role_turns_every_vendors_receipts_into_events(redis_client, app, logdir, uid):
    store = RedisStore(REDIS)
    devices = {}
    try:
        for vendor, credentials in CREDENTIALS.items():
            await store.put_credentials(app.app_id, vendor, credentials)
            devices[vendor] = await helpers.add_devices(store, app.app_id, vendor, 3)
    finally:
        await store.close()
    events = await TopicWatcher(topics.EVENTS).start()
    role, port, metrics_port = _receipts(logdir)
    task = f"receipts-{uid}"
    try:
        await role.wait_log("receipts started")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for vendor, ((_, ta), (_, tb), (_, tc)) in devices.items():
                url = f"/receipts/{vendor}/{app.app_id}"
                # vivo reports deliveries only.
                posts = [(True, [ta, tb])] + ([] if vendor == "vivo" else [(False, [tc])])
                for delivered, tokens in posts:
                    body, headers = _post_body(vendor, app.app_id, task, delivered, tokens)
                    response = await client.post(url, content=body, headers=headers)
                    assert response.status_code == 200, (vendor, response.text)
            (_, ta), *_ = devices["xiaomi"]
            forged, headers = _post_body("xiaomi", "other-app", task, True, [ta])
            refused = [await client.post(f"/receipts/xiaomi/{app.app_id}", content=forged,
                                         headers=headers),
                       await client.post(f"/receipts/oppo/{app.app_id}", content=b"[{",
                                         headers=helpers.JSON),
                       await client.post(f"/receipts/vivo/no-app-{uid}", content=b"{}",
                                         headers=helpers.JSON)]
            assert [resp.status_code for resp in refused] == [401, 400, 404]
        expected = set()
        for vendor, ((a, _), (b, _), (c, _)) in devices.items():
            expected.add(("delivered", "", tuple(sorted([a, b])), vendor))
            if vendor != "vivo":
                expected.add(("failed", "token_invalid", (c,), vendor))
        found = await helpers.wait_events(events, task, len(expected))
        assert helpers.outcomes(found) == expected
        text = scrape(metrics_port)
        assert metric(text, "herald_receipts_total", vendor="huawei", result="accepted") == 2
        assert metric(text, "herald_receipts_total", vendor="xiaomi", result="forged") == 1
        assert metric(text, "herald_receipts_total", vendor="oppo", result="malformed") == 1
        assert metric(text, "herald_receipts_total", vendor="vivo", result="unknown_app") == 1
        assert metric(text, "herald_receipts_devices_total", vendor="vivo",
                      outcome="delivered") == 2
        assert role.find("receipt", app_id=app.app_id, task_id=task, vendor="oppo",
                         stage="failed", registration_id=devices["oppo"][2][0])
        assert role.find("receipt refused", app_id=app.app_id, vendor="xiaomi", result="forged")
    finally:
        code = await _stop(role)
        await events.stop()
    assert code == 0
    assert len(helpers.task_events(events, task)) == len(expected)


def _receipted(events: TopicWatcher, task: str) -> list | None:
    found = [e for e in helpers.task_events(events, task) if e.stage in ("delivered", "clicked")]
    return found if {e.stage for e in found} == {"delivered", "clicked"} else None


@pytest.fixture
async def mipush():
    asgi, state = fake_mipush("xm-secret", "com.example.herald")
    async with serve(asgi, tls=True) as served:
        yield state, served


async def test_a_receipt_for_what_the_xiaomi_sender_sent_names_the_device(
        producer, redis_client, app, logdir, uid, mipush):
    state, served = mipush
    receipts, port, _ = _receipts(logdir)
    store = RedisStore(REDIS)
    try:
        await store.put_credentials(app.app_id, "xiaomi", {
            **CREDENTIALS["xiaomi"], "receipt_url": f"http://127.0.0.1:{port}/receipts/xiaomi/"
                                                    f"{app.app_id}"})
        ((rid, token),) = await helpers.add_devices(store, app.app_id, "xiaomi", 1)
    finally:
        await store.close()
    events = await TopicWatcher(topics.EVENTS).start()
    router = Role(["router"], {"HERALD_METRICS_PORT": str(free_port())}, logdir / "router.log")
    sender = Role(["vendor", "xiaomi"], {"HERALD_METRICS_PORT": str(free_port()),
                                         "HERALD_VENDOR_URL": served.url,
                                         "HERALD_VENDOR_CA_FILE": served.ca_file},
                  logdir / "vendor-xiaomi.log")
    roles = [receipts, router, sender]
    task = f"mi-{uid}"
    try:
        for role, line in ((receipts, "receipts started"), (router, "partitions assigned"),
                           (sender, "partitions assigned")):
            await role.wait_log(line)
        await producer.send_and_wait(topics.REQUESTS, json.dumps({
            "task_id": task, "app_id": app.app_id, "registration_ids": [rid], "push_flag": 0,
            "message": {"title": "Hello", "body": "with a receipt"}}).encode(),
            key=app.app_id.encode())
        sent = await eventually(lambda: [e for e in helpers.task_events(events, task)
                                         if e.stage == "sent"], 30, "the sent event")
        assert sent[0].registration_id == rid
        (request,) = state.requests
        url, param = request.form["extra.callback"], request.form["extra.callback.param"]
        assert request.form["registration_id"] == token
        async with httpx.AsyncClient() as client:
            for kind in (1, 2):
                body = helpers.xiaomi_body({"scm1": helpers.xiaomi_receipt(param, kind, [token])})
                response = await client.post(url, content=body, headers=helpers.XIAOMI_FORM)
                assert response.is_success
        stages = await eventually(lambda: _receipted(events, task), 30, "receipt events")
        assert {(e.stage, e.registration_id) for e in stages} == {("delivered", rid),
                                                                  ("clicked", rid)}
    finally:
        codes = [await _stop(role) for role in roles]
        await events.stop()
    assert codes == [0, 0, 0]
