"""Huawei receipts: signed posts become events on push.events; unsigned, badly signed, stale
and malformed posts are refused and publish nothing."""

from __future__ import annotations

import base64
import time

import pytest

from proto.events import Reason, Stage
from tests.vendors.receipts.conftest import vendor_app
from tests.vendors.receipts.helpers import (
    JSON,
    hms_body,
    hms_status,
    huawei_header,
    outcomes,
    task_events,
    wait_events,
)
from vendors.receipts import huawei
from vendors.receipts.errors import Forged, Malformed, Unverifiable
from vendors.receipts.model import Post

USER = "herald-receipts"
SECRET = base64.b64encode(b"a callback key of 32 bytes......").decode()
CREDS = {"client_id": "108123456", "client_secret": "hw-secret", "receipt_user": USER,
         "receipt_secret": SECRET}


@pytest.fixture
async def hw(store, app):
    return await vendor_app(store, app, "huawei", CREDS)


def _signed(**headers: str) -> dict[str, str]:
    return {**JSON, **huawei_header(USER, SECRET), **headers}


async def test_signed_statuses_become_delivered_and_failed_events(receipts, events, hw, uid):
    (a, ta), (b, tb), (c, tc) = hw.devices
    task = f"task-{uid}"
    body = hms_body(hms_status(ta, task, 0), hms_status(tb, task, 0, v2=True),
                    hms_status(tc, task, 2))
    response = await receipts.post(hw.url("huawei"), content=body, headers=_signed())
    assert response.status_code == 200
    assert response.json() == {"code": "0", "message": "success"}
    found = await wait_events(events, task, 2)
    assert outcomes(found) == {("delivered", "", tuple(sorted([a, b])), "huawei"),
                               ("failed", "token_invalid", (c,), "huawei")}
    assert {e.detail for e in found} == {"huawei state 0", "huawei state 2"}
    assert all(e.app_id == hw.app_id and e.msg_id == task for e in found)


@pytest.mark.parametrize("headers", [
    {},
    huawei_header(USER, base64.b64encode(b"not the key of the app..........").decode()),
    huawei_header("someone-else", SECRET),
    huawei_header(USER, SECRET, now_ms=int(time.time() * 1000) - 11 * 60 * 1000),
    {"X-HUAWEI-CALLBACK-ID": "timestamp=1;nonce=2"},
], ids=["unsigned", "other-key", "other-user", "stale", "garbled"])
async def test_posts_not_signed_by_the_apps_callback_key_publish_nothing(
        receipts, events, hw, uid, headers):
    (_a, ta), (b, tb), _ = hw.devices
    task = f"task-{uid}"
    forged = await receipts.post(hw.url("huawei"), content=hms_body(hms_status(ta, task, 0)),
                                 headers={**JSON, **headers})
    assert forged.status_code == 401 and forged.json()["code"] == "forged"
    # Same task, same partition: once the genuine receipt's event is in, a forged one would be.
    genuine = await receipts.post(hw.url("huawei"), content=hms_body(hms_status(tb, task, 0)),
                                  headers=_signed())
    assert genuine.status_code == 200
    await wait_events(events, task, 1)
    assert [e.devices() for e in task_events(events, task)] == [[b]]


async def test_an_app_without_a_callback_key_has_no_huawei_receipts(receipts, store, app, uid):
    await store.put_credentials(app.app_id, "huawei", {"client_id": "1", "client_secret": "s"})
    response = await receipts.post(f"/receipts/huawei/{app.app_id}", headers=_signed(),
                                   content=hms_body(hms_status("t", f"task-{uid}", 0)))
    assert response.status_code == 403 and response.json()["code"] == "forged"


@pytest.mark.parametrize("body", [b"not json", b'{"statuses": {}}', b'{"other": []}',
                                  b'{"statuses": [{"token": "t", "biTag": "x"}]}'],
                         ids=["text", "not-a-list", "no-statuses", "no-state"])
async def test_malformed_posts_are_refused(receipts, hw, body):
    response = await receipts.post(hw.url("huawei"), content=body, headers=_signed())
    assert response.status_code == 400 and response.json()["code"] == "malformed"


async def test_pending_states_and_foreign_bi_tags_publish_nothing(receipts, events, hw, uid):
    (_a, ta), (_b, tb), (c, tc) = hw.devices
    task = f"task-{uid}"
    body = hms_body(hms_status(ta, task, 27), hms_status(tb, "bi**62", 0),
                    hms_status(tc, task, 6))
    assert (await receipts.post(hw.url("huawei"), content=body, headers=_signed())).is_success
    (event,) = await wait_events(events, task, 1)
    assert (event.stage, event.reason, event.devices()) == ("failed", "vendor_error", [c])


def test_the_older_utf8_key_and_a_timestamp_in_seconds_verify():
    now_s = int(time.time())
    nonce = "n-1"
    value = huawei.signature(b"plain key", f"{now_s}{nonce}{USER}".encode())
    post = Post(b"", {huawei.HEADER: f"timestamp={now_s}; nonce={nonce}; value={value}"},
                now_s * 1000)
    huawei.verify(post, {"receipt_user": USER, "receipt_secret": "plain key"})
    with pytest.raises(Forged):
        huawei.verify(post, {"receipt_user": USER, "receipt_secret": "other key"})
    with pytest.raises(Unverifiable):
        huawei.verify(post, {"receipt_user": USER})


def test_states_map_to_stages_and_reasons():
    statuses = [hms_status("t", "task", s) for s in (0, 2, 5, 22, 31, 102, 144, 14, 51, 201)]
    headers = {k.lower(): v for k, v in huawei_header(USER, SECRET).items()}
    post = Post(hms_body(*statuses), headers, int(time.time() * 1000))
    got = [(r.stage, r.reason) for r in huawei.read(post, CREDS, "app")]
    assert got == [(Stage.DELIVERED, ""), (Stage.FAILED, Reason.TOKEN_INVALID),
                   (Stage.FAILED, Reason.TOKEN_INVALID), (Stage.FAILED, Reason.TOKEN_INVALID),
                   (Stage.FAILED, Reason.NOT_SUPPORTED), (Stage.FAILED, Reason.RATE_LIMITED),
                   (Stage.FAILED, Reason.REJECTED), (Stage.FAILED, Reason.VENDOR_ERROR),
                   (None, ""), (None, "")]
    with pytest.raises(Malformed):
        huawei.read(Post(b"[]", post.headers, post.now_ms), CREDS, "app")
