"""The Honor Push client against the fake Honor Push: payload, results, auth, limits."""

from __future__ import annotations

import pytest

from proto.message import ClickAction, Message
from tests.vendors.helpers import Clock
from tests.vendors.servers.base import serve
from tests.vendors.servers.honor import TOKEN_PATH, honor_app
from tests.vendors.test_huawei import NOW, _job
from vendors.errors import (
    PayloadTooLargeError,
    RejectedError,
    TransientError,
)
from vendors.hms import Extras, notify_id
from vendors.honor import Credentials, HonorClient, build_payload

CREDS = {"app_id": "104412345", "client_id": "honor-client", "client_secret": "ho-secret",
         "badge_class": "com.example.app.MainActivity"}


@pytest.fixture
async def fake():
    app, state = honor_app()
    async with serve(app, tls=True) as served:
        yield served, state


@pytest.fixture
def clock():
    return Clock(NOW)


@pytest.fixture
async def client(fake, clock):
    served, _ = fake
    client = HonorClient(base_url=served.url, auth_url=served.url + TOKEN_PATH, timeout_s=5,
                         verify=served.verify, clock=clock)
    yield client
    await client.close()


@pytest.fixture
def state(fake):
    return fake[1]


async def test_success_sends_the_exact_request(client, state):
    message = Message(title="Hi", body="there", data={"k": 1}, category="IM", badge=4,
                      sound="/raw/ding", channel_id="chat", priority="high")
    results = await client.send(_job("tok-a", "tok-b", message=message,
                                     expires_at_ms=int((NOW + 600) * 1000)), CREDS)

    assert [(r.registration_id, r.error, r.token_invalid) for r in results] == [
        ("rid-tok-a", "", False), ("rid-tok-b", "", False)]
    assert state.oauth.requests == [{"grant_type": "client_credentials",
                                     "client_id": "honor-client", "client_secret": "ho-secret"}]
    (sent,) = state.sends
    assert sent["path"] == "/api/v1/104412345/sendMessage"
    assert sent["headers"]["authorization"] == f"Bearer {next(iter(state.oauth.issued))}"
    assert sent["headers"]["timestamp"] == str(int(NOW * 1000))
    assert sent["body"] == {
        "data": '{"k":1}',
        "android": {
            "ttl": "600s", "biTag": "task-1",
            "notification": {
                "title": "Hi", "body": "there", "importance": "NORMAL",
                "notifyId": notify_id("msg-1"),
                "badge": {"setNum": 4, "badgeClass": "com.example.app.MainActivity"},
                "clickAction": {"type": 3}}},
        "token": ["tok-a", "tok-b"]}


async def test_expired_and_failed_tokens_are_reported_per_token(client, state):
    state.expired_tokens, state.failed_tokens = {"old"}, {"flaky"}
    results = await client.send(_job("good", "old", "flaky"), CREDS)
    assert [(r.registration_id, r.error, r.token_invalid) for r in results] == [
        ("rid-good", "", False), ("rid-old", "expireToken", True),
        ("rid-flaky", "failToken", False)]


async def test_all_tokens_invalid(client, state):
    state.expired_tokens = {"x", "y"}
    results = await client.send(_job("x", "y"), CREDS)
    assert len(results) == 2
    assert all(r.token_invalid and r.error.startswith("80300007") for r in results)


@pytest.mark.parametrize(("code", "error"), [
    (81000001, TransientError), (80300002, RejectedError), (80100003, RejectedError),
    (80300008, PayloadTooLargeError)])
async def test_result_codes(client, state, code, error):
    state.codes = [code]
    with pytest.raises(error) as err:
        await client.send(_job("a"), CREDS)
    assert type(err.value) is error and str(code) in err.value.reason


async def test_wrong_app_id_is_rejected(client, state):
    with pytest.raises(RejectedError, match="80300002"):
        await client.send(_job("a"), {**CREDS, "app_id": "999"})


def test_credentials_from_mapping():
    creds = Credentials.from_mapping({"app_id": "1", "client_id": "c", "client_secret": "s3"})
    assert creds == Credentials("1", "c", "s3", "") and "s3" not in repr(creds)
    for missing in ("app_id", "client_id", "client_secret"):
        with pytest.raises(ValueError, match=missing):
            Credentials.from_mapping({k: v for k, v in CREDS.items() if k != missing})


def test_build_payload_maps_every_notification_field():
    message = Message(title="T", body="B", data={"a": "b"}, badge_add=3, sound="/raw/ding",
                      click=ClickAction(type="intent", target="intent://x#Intent;end"),
                      small_icon="/raw/ic", large_icon="https://x.example/l.png",
                      image="https://x.example/i.png", category="marketing",
                      channel_id="news", collapse_id="7", priority="high", push_type="voip")
    extras = Extras(ttl_s=60, bi_tag="task", notify_id=42, badge_class="a.B")
    assert build_payload(message, ["t"], extras) == {
        "data": '{"a":"b"}',
        "android": {
            "ttl": "60s", "biTag": "task",
            "notification": {
                "title": "T", "body": "B", "image": "https://x.example/l.png",
                "importance": "LOW", "tag": "7", "notifyId": 42,
                "badge": {"addNum": 3, "badgeClass": "a.B"},
                "clickAction": {"type": 1, "intent": "intent://x#Intent;end"}}},
        "token": ["t"]}


def test_build_payload_data_message_is_pass_through():
    message = Message(kind="data", data={"call": "c1"}, push_type="voip", title="ignored")
    assert build_payload(message, ["t"]) == {"data": '{"call":"c1"}', "token": ["t"]}


def test_build_payload_drop_rules():
    message = Message(title="t", badge=1, image="https://x/i.png",
                      click=ClickAction(type="url", target="https://x"))
    notification = build_payload(message, ["t"])["android"]["notification"]
    assert "badge" not in notification  # no badge_class
    assert "importance" not in notification  # no category: Honor classifies
    assert notification["image"] == "https://x/i.png"
    assert notification["clickAction"] == {"type": 2, "url": "https://x"}
