"""Every notification field, chat, call and pass-through messages, end to end (issue #5).

The real gateway, router, HTTP API and two ``herald vendor`` processes (APNs and Huawei) run
on the real Redis and Kafka; APNs' production and development hosts and Huawei's Push Kit are
fakes in this test's event loop that check auth and payload as the vendors do. Each push is
published once through the HTTP API and once straight to Kafka, to an online device (a
``herald.device.Device``) and to an offline iOS and an offline Huawei device, and each of
them must see every field as ``docs/MESSAGE.md`` maps it.
"""

from __future__ import annotations

import json
import math
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import pytest

from herald.device import Device
from herald.redis_store import RedisStore
from proto import frames, keys, topics
from proto.envelopes import AppRecord
from proto.events import decode_event
from proto.message import ClickAction, Message
from tests.e2e import stack
from tests.harness import REDIS, Role, TopicWatcher, eventually, eventually_async, free_port
from tests.vendors import test_apns
from tests.vendors.servers.apns import ApnsState, Recorded
from tests.vendors.servers.base import Served, serve
from tests.vendors.servers.huawei import HuaweiState, huawei_app
from tests.vendors.test_kinds import two_hosts

BADGE_CLASS = "com.example.app.MainActivity"
#: A notification with every field a notification has (locales are issue #5's point 3).
FULL = Message(
    title="Order 42", body="Shipped today", data={"order": 42, "gift": True}, badge=3,
    sound="chime", click=ClickAction(type="url", target="https://shop.example/o/42"),
    small_icon="ic_push", large_icon="https://cdn.example/l.png",
    image="https://cdn.example/i.png", category="EXPRESS", channel_id="orders",
    collapse_id="order-42", priority="high", sender="shop", environment="development")
CHAT = Message(kind="chat", title="Bob", body="lunch?", conversation="group-42", sender="bob")
CALL = Message(kind="call", title="Alice", body="is calling", sender="alice",
               data={"room": "r1"})
DATA = Message(kind="data", data={"sync": 7}, sender="server")


@dataclass
class Stack:
    app: AppRecord
    api: str
    apns: dict[str, ApnsState]
    huawei: HuaweiState
    events: TopicWatcher
    online: Device
    ios: Device
    android: Device
    producer: Any

    async def publish(self, via: str, task: str, message: Message, **fields: Any) -> None:
        """Push ``message`` to the three devices through the HTTP API or Kafka."""
        body = {"task_id": task, "message": msgspec.to_builtins(message), "push_flag": 0,
                "registration_ids": [d.registration_id for d in (self.online, self.ios,
                                                                  self.android)], **fields}
        if via == "http":
            async with httpx.AsyncClient() as http:
                answer = await http.post(f"{self.api}/v1/push", json=body,
                                         auth=(self.app.app_id, self.app.server_secret))
            assert answer.status_code == 202, answer.text
            assert answer.json() == {"task_id": task}
        else:
            await self.producer.send_and_wait(
                topics.REQUESTS, json.dumps({**body, "app_id": self.app.app_id}).encode(),
                key=self.app.app_id.encode())

    async def sent(self, task: str) -> None:
        """Wait for the two vendor devices' ``sent`` events; no device may fail."""
        wanted = {(self.ios.registration_id, "apns"), (self.android.registration_id, "huawei")}

        def check() -> bool:
            mine = [e for e in (decode_event(r.value) for r in self.events.records)
                    if e.task_id == task]
            assert not [e for e in mine if e.stage == "failed"], mine
            return {(e.registration_id, e.channel) for e in mine
                    if e.stage == "sent" and e.channel != "online"} == wanted

        await eventually(check, 30, f"sent events of {task}")


def _credentials(apns: Served, huawei: HuaweiState) -> dict[str, dict[str, str]]:
    return {"apns": {**test_apns.CREDS, "environment": "production"},
            "huawei": {"client_id": huawei.oauth.client_id,
                       "client_secret": huawei.oauth.client_secret,
                       "badge_class": BADGE_CLASS}}


def _sender(logdir, vendor: str, served: Served, **env: str) -> Role:
    return Role(["vendor", vendor], {"HERALD_METRICS_PORT": str(free_port()),
                                     "HERALD_VENDOR_URL": served.url,
                                     "HERALD_VENDOR_CA_FILE": served.ca_file, **env},
                logdir / f"vendor-{vendor}.log")


@pytest.fixture
async def running(producer, redis_client, app, logdir, uid) -> AsyncIterator[Stack]:
    apns_app, apns_states = two_hosts(time.time)
    huawei_asgi, huawei_state = huawei_app()
    events = await TopicWatcher(topics.EVENTS).start()
    async with serve(apns_app, tls=True) as apns, serve(huawei_asgi, tls=True) as huawei:
        store = RedisStore(REDIS)
        try:
            for vendor, credentials in _credentials(apns, huawei_state).items():
                await store.put_credentials(app.app_id, vendor, credentials)
        finally:
            await store.close()
        ports = stack.ports()
        api_port = free_port()
        roles = [
            stack.gateway(logdir, f"node-{uid}", ports), stack.router(logdir, ports),
            Role(["api"], {"HERALD_PORT": str(api_port),
                           "HERALD_METRICS_PORT": str(free_port())}, logdir / "api.log"),
            _sender(logdir, "apns", apns, HERALD_VENDOR_SANDBOX_URL=f"{apns.url}/dev"),
            _sender(logdir, "huawei", huawei,
                    HERALD_VENDOR_AUTH_URL=f"{huawei.url}/oauth2/v3/token")]
        gateway, router, api, *senders = roles
        devices = [Device(app.app_id, app.client_key),
                   Device(app.app_id, app.client_key, vendor="apns", platform="ios",
                          vendor_token=uid.encode().hex().ljust(64, "0")),
                   Device(app.app_id, app.client_key, vendor="huawei", platform="android",
                          vendor_token=f"hw-token-{uid}")]
        try:
            await gateway.wait_log("gateway listening")
            await router.wait_log("partitions assigned")
            await api.wait_log("api started")
            for sender in senders:
                await sender.wait_log("partitions assigned")
            url = f"ws://127.0.0.1:{ports.gateway}"
            for device in devices:
                await device.connect(url)
            for device in devices[1:]:
                await device.close()

            async def offline() -> bool:
                present = await redis_client.mget(
                    [keys.presence(app.app_id, d.registration_id) for d in devices[1:]])
                return all(p is None for p in present)

            await eventually_async(offline, 10, "the vendor devices' presence to go")
            yield Stack(app, f"http://127.0.0.1:{api_port}", apns_states, huawei_state, events,
                        *devices, producer=producer)
        finally:
            for device in devices:
                await device.close()
            codes = [await _stop(role) for role in roles]
            await events.stop()
        assert codes == [0] * len(roles)


async def _stop(role: Role) -> int | None:
    try:
        return await role.stop()
    except AssertionError:
        role.kill()
        return None


def _huawei_sends(state: HuaweiState) -> list[dict[str, Any]]:
    return [s["body"]["message"] for s in state.sends]


def _only(requests: list[Recorded]) -> Recorded:
    assert [r.status for r in requests] == [200]
    return requests[0]


# --- every notification field -------------------------------------------------------------------


@pytest.mark.parametrize("via", ["http", "kafka"])
async def test_every_notification_field_arrives_as_documented(running, via, uid):
    task = f"fields-{via}-{uid}"
    await running.publish(via, task, FULL, lifetime_s=600)
    (push,) = await running.online.wait_for(1, 15)
    # The device: every field in msg, as given.
    assert push.msg == frames.message_map(FULL) == msgspec.to_builtins(FULL)
    assert frames.message_of(push) == FULL
    await running.sent(task)

    # APNs: the message's environment (development) wins over the credentials' production.
    assert running.apns["production"].requests == []
    request = _only(running.apns["development"].requests)
    assert request.device_token == running.ios.vendor_token
    headers = request.headers
    assert (headers["apns-topic"], headers["apns-push-type"], headers["apns-priority"],
            headers["apns-collapse-id"]) == (test_apns.BUNDLE, "alert", "10", "order-42")
    expiry = int(headers["apns-expiration"])
    assert math.ceil(time.time()) <= expiry + 60 and expiry <= math.ceil(time.time()) + 600
    assert request.payload == {
        "aps": {"alert": {"title": "Order 42", "body": "Shipped today"}, "badge": 3,
                "sound": "chime", "category": "EXPRESS", "mutable-content": 1},
        "order": 42, "gift": True, "sender": "shop",
        "herald": {"image": "https://cdn.example/i.png",
                   "click": {"type": "url", "target": "https://shop.example/o/42"}}}

    # Huawei: every field it carries; environment has no Huawei counterpart.
    (sent,) = _huawei_sends(running.huawei)
    assert sent["token"] == [running.android.vendor_token]
    assert json.loads(sent["data"]) == {"order": 42, "gift": True, "sender": "shop"}
    android = sent["android"]
    assert (android["urgency"], android["category"], android["bi_tag"]) == (
        "HIGH", "EXPRESS", task)
    assert android["ttl"].endswith("s") and 0 < int(android["ttl"][:-1]) <= 600
    assert android["notification"] == {
        "title": "Order 42", "body": "Shipped today", "icon": "ic_push",
        "image": "https://cdn.example/l.png", "sound": "chime", "default_sound": False,
        "channel_id": "orders", "tag": "order-42",
        "notify_id": zlib.crc32(task.encode()) & 0x7FFFFFFF,
        "badge": {"set_num": 3, "class": BADGE_CLASS},
        "click_action": {"type": 2, "url": "https://shop.example/o/42"}}


# --- chat, call, pass-through ---------------------------------------------------------------


@pytest.mark.parametrize("via", ["http", "kafka"])
async def test_chat_call_and_data_arrive_as_documented(running, via, uid):
    tasks = {kind: f"{kind}-{via}-{uid}" for kind in ("chat", "call", "data")}
    await running.publish(via, tasks["chat"], CHAT)
    await running.publish(via, tasks["call"], CALL, lifetime_s=30)
    await running.publish(via, tasks["data"], DATA)
    shown = await running.online.wait_for(3, 15)
    by_task = {p.task: p for p in shown}
    chat, call, data = (by_task[tasks[k]] for k in ("chat", "call", "data"))
    # The device: chat and call as v1 notifications naming their scene.
    assert chat.msg == {"kind": "notify", "scene": "chat", "title": "Bob", "body": "lunch?",
                        "badge_add": 1, "category": "IM", "collapse_id": "group-42",
                        "sender": "bob", "conversation": "group-42"}
    assert call.msg == {"kind": "notify", "scene": "call", "title": "Alice",
                        "body": "is calling", "data": {"room": "r1"}, "category": "VOIP",
                        "priority": "high", "push_type": "voip", "sender": "alice"}
    assert data.msg == {"kind": "data", "data": {"sync": 7}, "sender": "server"}
    assert [frames.message_of(p) for p in (chat, call, data)] == [CHAT, CALL, DATA]
    for task in tasks.values():
        await running.sent(task)

    # APNs (production, the credentials'): chat an alert, call a VoIP push, data background.
    assert running.apns["development"].requests == []
    by_topic = {(r.headers["apns-topic"], r.headers["apns-push-type"]): r
                for r in running.apns["production"].requests if r.status == 200}
    assert set(by_topic) == {(test_apns.BUNDLE, "alert"), (f"{test_apns.BUNDLE}.voip", "voip"),
                             (test_apns.BUNDLE, "background")}
    apns_chat = by_topic[(test_apns.BUNDLE, "alert")]
    assert apns_chat.headers["apns-collapse-id"] == "group-42"
    assert apns_chat.payload == {"aps": {"alert": {"title": "Bob", "body": "lunch?"},
                                         "category": "IM"},
                                 "conversation": "group-42", "sender": "bob"}
    apns_call = by_topic[(f"{test_apns.BUNDLE}.voip", "voip")]
    assert apns_call.headers["apns-priority"] == "10"
    assert 0 < int(apns_call.headers["apns-expiration"]) <= math.ceil(time.time()) + 30
    assert apns_call.payload == {"aps": {"alert": {"title": "Alice", "body": "is calling"}},
                                 "room": "r1", "sender": "alice"}
    apns_data = by_topic[(test_apns.BUNDLE, "background")]
    assert apns_data.headers["apns-priority"] == "5"
    assert apns_data.payload == {"aps": {"content-available": 1}, "sync": 7, "sender": "server"}

    # Huawei: chat IM, call VOIP at high urgency, data without a notification.
    sends = {s["android"]["bi_tag"]: s for s in _huawei_sends(running.huawei)}
    hw_chat, hw_call, hw_data = (sends[tasks[k]] for k in ("chat", "call", "data"))
    assert json.loads(hw_chat["data"]) == {"conversation": "group-42", "sender": "bob"}
    assert (hw_chat["android"]["category"], hw_chat["android"]["urgency"]) == ("IM", "NORMAL")
    assert hw_chat["android"]["notification"]["tag"] == "group-42"
    assert hw_chat["android"]["notification"]["badge"] == {"add_num": 1, "class": BADGE_CLASS}
    assert json.loads(hw_call["data"]) == {"room": "r1", "sender": "alice"}
    assert (hw_call["android"]["category"], hw_call["android"]["urgency"]) == ("VOIP", "HIGH")
    assert hw_call["android"]["notification"]["title"] == "Alice"
    assert json.loads(hw_data["data"]) == {"sync": 7, "sender": "server"}
    assert "notification" not in hw_data["android"]


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(("message", "fields", "reason"), [
    ({"kind": "call", "title": "ring"}, {"lifetime_s": 3600}, "a call's lifetime_s is at most"),
    ({"kind": "chat", "title": "t", "sender": "bob"}, {}, "needs a conversation and a sender"),
    ({"title": "t", "sender": "not an account"}, {}, "sender must be an account id"),
    ({"title": "t", "environment": "sandbox"}, {}, "environment"),
])
async def test_bad_messages_are_refused_and_nothing_is_sent(running, message, fields, reason,
                                                            uid):
    body = {"task_id": f"bad-{uid}", "message": message, "registration_ids": [
        running.online.registration_id, running.ios.registration_id], **fields}
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{running.api}/v1/push", json=body,
                                 auth=(running.app.app_id, running.app.server_secret))
    assert answer.status_code == 400 and reason in answer.json()["reason"], answer.text
    # The API keeps serving: a good push right after it goes through.
    await running.publish("http", f"good-{uid}", Message(title="still here"))
    (push,) = await running.online.wait_for(1, 15)
    assert push.task == f"good-{uid}"
    await running.sent(f"good-{uid}")
    assert len(running.apns["production"].requests) == 1
    assert len(running.huawei.sends) == 1
