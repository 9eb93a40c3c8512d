"""The receipt endpoint around the vendor modules: routing, limits, unknown apps, a failing
directory; the store's vendor-token index; the tag and event helpers."""

from __future__ import annotations

import httpx
import pytest

from herald.kafka_bus import KafkaBus
from proto import keys
from proto.envelopes import DeviceRecord
from proto.events import Stage
from tests.harness import KAFKA
from tests.vendors.receipts.conftest import MAX_BODY, vendor_app
from tests.vendors.receipts.helpers import JSON
from vendors.receipts import tags
from vendors.receipts.app import create_app
from vendors.receipts.errors import Forged, Malformed, Unverifiable
from vendors.receipts.events import events_of
from vendors.receipts.model import Receipt
from vendors.vivo import Credentials as VivoCredentials

VIVO = {"app_id": "1004", "app_key": "k", "app_secret": "vivo-secret"}


async def test_unknown_vendors_apps_and_app_ids_are_not_found(receipts, store, app):
    await store.put_credentials(app.app_id, "vivo", VIVO)
    for path in ("/receipts/apns/" + app.app_id, f"/receipts/oppo/{app.app_id}",
                 "/receipts/vivo/no-such-app", "/receipts/vivo/bad%20id"):
        response = await receipts.post(path, content=b"{}", headers=JSON)
        assert response.status_code == 404, path
    assert (await receipts.get(f"/receipts/vivo/{app.app_id}")).status_code == 405


async def test_bodies_over_the_limit_are_refused(receipts, store, app):
    await store.put_credentials(app.app_id, "vivo", VIVO)
    url = f"/receipts/vivo/{app.app_id}"
    declared = await receipts.post(url, content=b"x" * (MAX_BODY + 1), headers=JSON)
    assert declared.status_code == 413

    async def chunks():
        for _ in range(MAX_BODY // 1024 + 1):
            yield b"x" * 1024

    streamed = await receipts.post(url, content=chunks(), headers=JSON)
    assert streamed.status_code == 413


async def test_a_failing_directory_asks_the_vendor_to_post_again(store, app, uid):
    class Down:
        async def vendor_token_devices(self, app_id, vendor, tokens):
            raise ConnectionError("redis is down")

    vivo = await vendor_app(store, app, "vivo", VIVO)
    bus = KafkaBus(KAFKA, client_id="test-receipts-down")
    await bus.start()
    try:
        asgi = create_app(store, bus, Down(), MAX_BODY)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi),
                                     base_url="http://r") as client:
            tag = tags.tag("vivo-secret", "vivo", app.app_id, f"task-{uid}")
            body = f'{{"v": {{"param": "{tag}", "targets": "{vivo.devices[0][1]}"}}}}'
            response = await client.post(vivo.url("vivo"), content=body, headers=JSON)
    finally:
        await bus.stop()
    assert response.status_code == 503 and response.json()["code"] == "unavailable"


async def test_the_token_index_names_only_devices_that_still_hold_the_token(
        store, redis_client, app):
    vivo = await vendor_app(store, app, "vivo", VIVO)
    (a, ta), (b, tb), (c, tc) = vivo.devices
    # b registered a new token since (the index moves), the vendor called c's token invalid
    # (the index forgets it), and an entry names a device that is gone.
    await store.put_device(app.app_id, b, DeviceRecord(vendor="vivo", vendor_token="newer"))
    assert await store.forget_vendor_token(app.app_id, c, tc)
    await redis_client.hset(keys.vendor_tokens(app.app_id, "vivo"), "stray", "no-such-device")
    found = await store.vendor_token_devices(app.app_id, "vivo",
                                             [ta, tb, "newer", "stray", "x", tc])
    assert found == [a, None, b, None, None, None]
    assert set(await redis_client.hkeys(keys.vendor_tokens(app.app_id, "vivo"))) == {
        ta.encode(), b"stray", b"newer"}
    assert await store.vendor_token_devices(app.app_id, "xiaomi", [ta]) == [None]
    assert await store.vendor_token_devices(app.app_id, "vivo", []) == []


def test_tags_open_only_under_their_key_vendor_and_app():
    tag = tags.tag("key", "vivo", "app", "task.1-x")
    assert tag.startswith("task.1-x~") and len(tag) == len("task.1-x") + 1 + tags.MAC_CHARS
    assert tags.open_tag("key", "vivo", "app", tag) == "task.1-x"
    for key, vendor, app_id in (("other", "vivo", "app"), ("key", "oppo", "app"),
                                ("key", "vivo", "app2")):
        with pytest.raises(Forged):
            tags.open_tag(key, vendor, app_id, tag)
    with pytest.raises(Malformed):
        tags.open_tag("key", "vivo", "app", "bad id!~0123456789")
    assert tags.task_of({"app_secret": "key"}, "app_secret", "vivo", "app", "not-a-tag") == ""
    with pytest.raises(Unverifiable):
        tags.task_of({}, "app_secret", "vivo", "app", tag)


def test_a_callback_is_asked_for_only_with_a_url_and_a_tag_that_fits():
    assert tags.callback("", "k", "oppo", "app", "t", 50) is None
    assert tags.callback("https://r.example/receipts/oppo/app", "k", "oppo", "app", "t" * 39,
                         50) is not None
    assert tags.callback("https://r.example/receipts/oppo/app", "k", "oppo", "app", "t" * 40,
                         50) is None
    with pytest.raises(ValueError, match="receipt_url"):
        VivoCredentials.from_mapping({**VIVO, "receipt_url": "ftp://r.example"})


def test_events_group_devices_by_task_stage_and_reason():
    receipts = [Receipt("t1", ("a", "b"), Stage.DELIVERED, detail="d"),
                Receipt("t1", ("b", "c", "zz"), Stage.DELIVERED, detail="d"),
                Receipt("t1", ("c",), Stage.FAILED, "token_invalid", "f"),
                Receipt("t2", ("a",), None)]
    outcome = events_of("vivo", "app", receipts, {"a": "ra", "b": "rb", "c": "rc"}, 7)
    assert [(e.stage, e.registration_id, e.registration_ids, e.reason)
            for e in outcome.events] == [("delivered", "", ["ra", "rb", "rc"], ""),
                                         ("failed", "rc", [], "token_invalid")]
    assert dict(outcome.devices) == {"delivered": 3, "failed": 1, "unknown": 1, "ignored": 1}

