"""What the receipt tests share: devices in the real store (which indexes their vendor tokens),
and receipt posts built as each vendor posts them."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from herald.store import Store
from proto.envelopes import DeviceRecord
from proto.events import Event, decode_event
from tests.harness import TopicWatcher, eventually
from vendors.receipts import huawei


async def add_devices(store: Store, app_id: str, vendor: str, count: int) -> list[tuple[str, str]]:
    """``count`` devices of the app on ``vendor``, registered as the gateway registers them;
    their (registration id, vendor token)."""
    devices = []
    for _ in range(count):
        rid, token = uuid.uuid4().hex, f"{vendor}-token-{uuid.uuid4().hex}"
        await store.put_device(app_id, rid, DeviceRecord(platform="android", vendor=vendor,
                                                         vendor_token=token))
        await store.add_device(app_id, rid)
        devices.append((rid, token))
    return devices


def task_events(watcher: TopicWatcher, task_id: str) -> list[Event]:
    """The events of one task the watcher has seen (keyed by task id, as Herald keys them)."""
    return [decode_event(r.value) for r in watcher.records if r.key == task_id.encode()]


async def wait_events(watcher: TopicWatcher, task_id: str, count: int) -> list[Event]:
    """The task's events once there are ``count`` of them, in arrival order."""
    return await eventually(lambda: len(task_events(watcher, task_id)) >= count
                            and task_events(watcher, task_id), 20, f"{count} events of {task_id}")


def outcomes(events: Sequence[Event]) -> set[tuple[str, str, tuple[str, ...], str]]:
    """(stage, reason, registration ids, channel) of each event."""
    return {(e.stage, e.reason, tuple(sorted(e.devices())), e.channel) for e in events}


# Receipt posts, as each vendor posts them.

def huawei_header(user: str, secret: str, now_ms: int | None = None,
                  nonce: str = "a07bfa17-6d82-4b53-a9a2-07cfef5ceef1") -> dict[str, str]:
    """X-HUAWEI-CALLBACK-ID signed with ``secret`` used as Huawei uses a Base64 key."""
    timestamp = str(int(time.time() * 1000) if now_ms is None else now_ms)
    value = huawei.signature(base64.b64decode(secret), f"{timestamp}{nonce}{user}".encode())
    return {"X-HUAWEI-CALLBACK-ID": f"timestamp={timestamp};nonce={nonce};value={value}"}


def hms_body(*statuses: dict[str, Any]) -> bytes:
    """A Huawei or Honor receipt body."""
    return json.dumps({"statuses": list(statuses)}).encode()


def hms_status(token: str, bi_tag: str, state: int, *, v2: bool = False) -> dict[str, Any]:
    """One status, in the V1 or V2 shape."""
    if v2:
        return {"token": token, "biTag": bi_tag, "pushType": 0, "requestId": "1698021701",
                "appPackageName": "com.example", "deliveryStatus": {
                    "result": state, "timestamp": 1697741455082}}
    return {"token": token, "biTag": bi_tag, "status": state, "appid": "10086",
            "timestamp": 1489993883189, "requestId": "1234567890"}


def xiaomi_body(receipts: dict[str, dict[str, Any]]) -> bytes:
    """A MiPush receipt post: the ``data`` form field."""
    return urlencode({"data": json.dumps(receipts)}).encode()


def xiaomi_receipt(param: str, kind: int, tokens: Sequence[str]) -> dict[str, Any]:
    """One MiPush receipt value."""
    return {"param": param, "type": kind, "targets": ",".join(tokens), "jobkey": "",
            "barStatus": "Enable", "timestamp": 1700000000000}


def oppo_event(param: str, event_type: str, tokens: Sequence[str]) -> dict[str, Any]:
    """One OPPO receipt event."""
    return {"messageId": "oppo-msg-1", "appId": "oppo-app", "taskId": "oppo-task-1",
            "registrationIds": ",".join(tokens), "eventTime": "1700000000000",
            "param": param, "eventType": event_type}


def vivo_receipt(param: str, tokens: Sequence[str]) -> dict[str, Any]:
    """One vivo receipt value."""
    return {"param": param, "targets": ",".join(tokens)}


XIAOMI_FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = {"content-type": "application/json"}


def receipt_post(vendor: str, echoed: str, tokens: Sequence[str], *,
                 delivered: bool = True) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a post of ``vendor`` echoing ``echoed`` (Herald's tag; Huawei:
    the task id) for ``tokens``: delivered, or saying they are invalid (not vivo, which only
    reports deliveries). Huawei's signature header is the caller's to add."""
    if vendor in ("huawei", "honor"):
        return hms_body(*(hms_status(t, echoed, 0 if delivered else 2) for t in tokens)), JSON
    if vendor == "xiaomi":
        kind = 1 if delivered else 16
        return xiaomi_body({"scm1": xiaomi_receipt(echoed, kind, tokens)}), XIAOMI_FORM
    if vendor == "oppo":
        event = "push_arrive" if delivered else "regid_invalid"
        return json.dumps([oppo_event(echoed, event, tokens)]).encode(), JSON
    return json.dumps({"vt-1": vivo_receipt(echoed, tokens)}).encode(), JSON
