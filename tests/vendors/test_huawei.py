"""The Huawei Push Kit client against the fake Push Kit: payload, results, auth, limits."""

from __future__ import annotations

import pytest

from proto.message import ClickAction, Message
from tests.vendors.helpers import Clock, job_factory
from tests.vendors.servers.base import serve
from tests.vendors.servers.huawei import huawei_app
from vendors.errors import (
    PayloadTooLargeError,
    RejectedError,
    TransientError,
)
from vendors.hms import Extras, notify_id
from vendors.huawei import Credentials, HuaweiClient, build_payload

NOW = 1_700_000_000.0
CREDS = {"client_id": "108123456", "client_secret": "hw-secret",
         "badge_class": "com.example.app.MainActivity"}


_job = job_factory(task_id="task-1", msg_id="msg-1", message=Message(title="Hi", body="there"))


@pytest.fixture
async def fake():
    app, state = huawei_app()
    async with serve(app, tls=True) as served:
        yield served, state


@pytest.fixture
def clock():
    return Clock(NOW)


@pytest.fixture
async def client(fake, clock):
    served, _ = fake
    client = HuaweiClient(base_url=served.url, auth_url=f"{served.url}/oauth2/v3/token",
                          timeout_s=5, verify=served.verify, clock=clock)
    yield client
    await client.close()


@pytest.fixture
def state(fake):
    return fake[1]


async def test_success_sends_the_exact_request(client, state):
    message = Message(title="Hi", body="there", data={"k": 1}, priority="high",
                      category="IM", channel_id="chat", badge_add=2)
    results = await client.send(_job("tok-a", "tok-b", message=message,
                                     expires_at_ms=int((NOW + 3600) * 1000)), CREDS)

    assert [(r.registration_id, r.error, r.token_invalid) for r in results] == [
        ("rid-tok-a", "", False), ("rid-tok-b", "", False)]
    assert state.oauth.requests == [{"grant_type": "client_credentials",
                                     "client_id": "108123456", "client_secret": "hw-secret"}]
    (sent,) = state.sends
    assert sent["path"] == "/v1/108123456/messages:send"
    assert sent["headers"]["authorization"] == f"Bearer {next(iter(state.oauth.issued))}"
    assert sent["headers"]["content-type"] == "application/json; charset=UTF-8"
    assert sent["body"] == {"validate_only": False, "message": {
        "data": '{"k":1}',
        "android": {
            "urgency": "HIGH", "category": "IM", "ttl": "3600s", "bi_tag": "task-1",
            "notification": {
                "title": "Hi", "body": "there", "default_sound": True, "channel_id": "chat",
                "notify_id": notify_id("msg-1"),
                "badge": {"add_num": 2, "class": "com.example.app.MainActivity"},
                "click_action": {"type": 3}}},
        "token": ["tok-a", "tok-b"]}}


@pytest.mark.parametrize(("expires_in_ms", "ttl"), [(90_400, "90s"), (-5_000, "0s")])
async def test_ttl_is_what_is_left_of_the_lifetime(client, state, expires_in_ms, ttl):
    await client.send(_job("a", expires_at_ms=int(NOW * 1000) + expires_in_ms), CREDS)
    assert state.sends[0]["body"]["message"]["android"]["ttl"] == ttl


async def test_partial_success_marks_exactly_the_illegal_tokens(client, state):
    state.invalid_tokens = {"bad"}
    results = await client.send(_job("good-1", "bad", "good-2"), CREDS)
    assert [(r.registration_id, r.error, r.token_invalid) for r in results] == [
        ("rid-good-1", "", False), ("rid-bad", "illegal_token", True),
        ("rid-good-2", "", False)]


async def test_all_tokens_invalid(client, state):
    state.invalid_tokens = {"x", "y"}
    results = await client.send(_job("x", "y"), CREDS)
    assert all(r.token_invalid and r.error.startswith("80300007") for r in results)
    assert len(results) == 2


async def test_partial_success_without_token_list_invalidates_nothing(client, state):
    state.codes = ["80100000"]
    results = await client.send(_job("a", "b"), CREDS)
    assert [(r.error, r.token_invalid) for r in results] == [
        ("80100000: unreadable token list", False)] * 2


@pytest.mark.parametrize(("code", "error"), [
    ("81000001", TransientError), ("80300002", RejectedError), ("80100004", RejectedError),
    ("80300008", PayloadTooLargeError)])
async def test_result_codes(client, state, code, error):
    state.codes = [code]
    with pytest.raises(error) as err:
        await client.send(_job("a"), CREDS)
    assert type(err.value) is error and code in err.value.reason


async def test_tokens_do_not_count_toward_the_size_limit(client, state):
    message = Message(title="t", data={"k": "x" * 3500})
    tokens = [f"{i:0>120}" for i in range(1000)]
    results = await client.send(_job(*tokens, message=message), CREDS)
    assert len(results) == 1000 and not any(r.error for r in results)
    assert len(state.sends[0]["body"]["message"]["token"]) == 1000


async def test_revoke_names_the_sent_notification(client, state):
    job = _job("a", "b")
    await client.send(job, CREDS)
    await client.revoke(job, CREDS)
    assert client.can_revoke
    (revoke,) = state.revokes
    assert revoke["path"] == "/v1/108123456/messages:revoke"
    assert revoke["headers"]["push-type"] == "0"
    sent_id = state.sends[0]["body"]["message"]["android"]["notification"]["notify_id"]
    assert revoke["body"] == {"notifyId": sent_id, "token": ["a", "b"]}


async def test_revoke_refusal_is_rejected(client, state):
    with pytest.raises(RejectedError, match="80300010"):
        await client.revoke(_job(), CREDS)


def test_credentials_from_mapping():
    creds = Credentials.from_mapping({"client_id": "1", "client_secret": "s3"})
    assert creds == Credentials("1", "s3", "") and "s3" not in repr(creds)
    for missing in ("client_id", "client_secret"):
        with pytest.raises(ValueError, match=missing):
            Credentials.from_mapping({k: v for k, v in CREDS.items() if k != missing})


def test_build_payload_maps_every_notification_field():
    message = Message(title="T", body="B", data={"a": "b"}, badge=5, sound="/raw/ding",
                      click=ClickAction(type="url", target="https://x.example/p"),
                      small_icon="/raw/ic_push", large_icon="https://x.example/l.png",
                      image="https://x.example/i.png", category="MARKETING",
                      channel_id="news", collapse_id="7", priority="normal", push_type="alert")
    extras = Extras(ttl_s=60, bi_tag="task", notify_id=42, badge_class="a.B")
    assert build_payload(message, ["t"], extras) == {"validate_only": False, "message": {
        "data": '{"a":"b"}',
        "android": {
            "collapse_key": 7, "urgency": "NORMAL", "category": "MARKETING", "ttl": "60s",
            "bi_tag": "task",
            "notification": {
                "title": "T", "body": "B", "icon": "/raw/ic_push",
                "image": "https://x.example/l.png", "sound": "/raw/ding",
                "default_sound": False, "channel_id": "news", "tag": "7", "notify_id": 42,
                "badge": {"set_num": 5, "class": "a.B"},
                "click_action": {"type": 2, "url": "https://x.example/p"}}},
        "token": ["t"]}}


def test_build_payload_data_message_is_pass_through():
    message = Message(kind="data", data={"call": "c1"}, push_type="voip", priority="high",
                      title="ignored", badge=3)
    assert build_payload(message, ["t"]) == {"validate_only": False, "message": {
        "data": '{"call":"c1"}',
        "android": {"urgency": "HIGH", "category": "VOIP"},
        "token": ["t"]}}


@pytest.mark.parametrize(("click", "expected"), [
    (ClickAction(), {"type": 3}),
    (ClickAction(type="url", target="https://x"), {"type": 2, "url": "https://x"}),
    (ClickAction(type="intent", target="intent://p#Intent;end"),
     {"type": 1, "intent": "intent://p#Intent;end"}),
    (ClickAction(type="deeplink", target="app://chat/1"), {"type": 1, "intent": "app://chat/1"}),
])
def test_build_payload_click_actions(click, expected):
    body = build_payload(Message(title="t", click=click), ["t"])
    assert body["message"]["android"]["notification"]["click_action"] == expected


def test_build_payload_drop_rules():
    message = Message(title="t", badge_add=1, image="https://x/i.png", collapse_id="chat-9")
    body = build_payload(message, ["t"])["message"]
    notification = body["android"]["notification"]
    assert "badge" not in notification  # no badge_class
    assert notification["image"] == "https://x/i.png"
    assert notification["tag"] == "chat-9" and "collapse_key" not in body["android"]
    assert "ttl" not in body["android"] and "category" not in body["android"]
    assert "data" not in body
    out_of_range = build_payload(Message(title="t", collapse_id="101"), ["t"])["message"]
    assert "collapse_key" not in out_of_range["android"]
