"""The FCM client against a fake FCM that checks the OAuth assertion, the token and the message."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from proto.message import ClickAction, Message
from tests.vendors.helpers import Clock, job_factory
from tests.vendors.servers.base import serve
from tests.vendors.servers.fcm import FcmState, ServiceAccount, fcm_app
from vendors.errors import (
    AuthError,
    PayloadTooLargeError,
    RateLimitedError,
    RejectedError,
    TransientError,
)
from vendors.fcm import Credentials, FcmClient, build_payload, data_value

NOW = 1_700_000_000.0


@pytest.fixture(scope="module")
def account() -> ServiceAccount:
    return ServiceAccount("herald-test", "sender@herald-test.iam.gserviceaccount.com", "kid-1",
                          rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
async def fcm(account, clock):
    state = FcmState(account, clock)
    async with serve(fcm_app(state), tls=True) as served:
        client = FcmClient(base_url=served.url, verify=served.verify, clock=clock)
        yield state, client, account.credentials(f"{served.url}/token")
        await client.close()


_job = job_factory()


async def test_send_authorizes_and_posts_the_exact_message(fcm, clock):
    state, client, creds = fcm
    message = Message(title="Hi", body="There", data={"n": 1, "s": "x"}, badge=3, sound="ding",
                      channel_id="news", priority="high", collapse_id="c1")
    results = await client.send(_job("token-000001", message=message,
                                     expires_at_ms=int((NOW + 600) * 1000)), creds)
    assert [(r.registration_id, r.error, r.token_invalid) for r in results] == [
        ("rid-token-000001", "", False)]
    (claims,) = state.token_requests
    assert claims == {"iss": creds["client_email"], "aud": creds["token_uri"],
                      "scope": "https://www.googleapis.com/auth/firebase.messaging",
                      "iat": int(NOW), "exp": int(NOW) + 3600}
    (sent,) = state.sends
    assert sent["authorization"] == "Bearer ya29.fake-0"
    assert sent["content_type"].startswith("application/json")
    assert sent["http_version"] == "2"
    assert sent["body"] == {"message": {
        "token": "token-000001",
        "notification": {"title": "Hi", "body": "There"},
        "data": {"n": "1", "s": "x"},
        "android": {"priority": "HIGH", "ttl": "600s", "collapse_key": "c1",
                    "notification": {"channel_id": "news", "sound": "ding", "tag": "c1",
                                     "notification_count": 3}}}}


async def test_batch_reports_each_device_in_order(fcm):
    state, client, creds = fcm
    state.faults = {"gone-00001": "UNREGISTERED", "elsewhere1": "SENDER_ID_MISMATCH"}
    results = await client.send(_job("good-00001", "gone-00001", "bad token", "elsewhere1",
                                     "good-00002"), creds)
    assert [(r.registration_id, r.error, r.token_invalid) for r in results] == [
        ("rid-good-00001", "", False),
        ("rid-gone-00001", "UNREGISTERED", True),
        ("rid-bad token", "INVALID_ARGUMENT", True),
        ("rid-elsewhere1", "SENDER_ID_MISMATCH", True),
        ("rid-good-00002", "", False)]
    assert sorted(s["body"]["message"]["token"] for s in state.sends) == [
        "good-00001", "good-00002"]
    assert len(state.token_requests) == 1


async def test_sender_mismatch_alone_keeps_the_token(fcm):
    state, client, creds = fcm
    state.faults = {"elsewhere1": "SENDER_ID_MISMATCH"}
    (result,) = await client.send(_job("elsewhere1"), creds)
    assert (result.error, result.token_invalid) == ("SENDER_ID_MISMATCH", False)


async def test_quota_carries_retry_after(fcm):
    state, client, creds = fcm
    state.faults, state.retry_after = {"token-000001": "QUOTA_EXCEEDED"}, "17"
    with pytest.raises(RateLimitedError) as err:
        await client.send(_job("token-000001"), creds)
    assert err.value.retriable and err.value.retry_after_s == 17


@pytest.mark.parametrize("fault", ["INTERNAL", "UNAVAILABLE"])
async def test_server_errors_are_transient(fcm, fault):
    state, client, creds = fcm
    state.faults = {"token-000001": fault}
    with pytest.raises(TransientError) as err:
        await client.send(_job("token-000001"), creds)
    assert err.value.retriable


async def test_a_failed_request_after_a_delivery_is_reported_for_its_device(fcm):
    state, client, creds = fcm
    state.faults, state.retry_after = {"token-000002": "QUOTA_EXCEEDED"}, "5"
    results = await client.send(_job("token-000001", "token-000002"), creds)
    assert [(r.error.startswith("HTTP 429"), r.token_invalid) for r in results] == [
        (False, False), (True, False)]


async def test_an_invalid_argument_not_about_the_token_rejects_the_job(fcm):
    state, client, creds = fcm
    state.faults = {"token-000001": "BAD_PAYLOAD"}
    with pytest.raises(RejectedError, match="HTTP 400 INVALID_ARGUMENT") as err:
        await client.send(_job("token-000001"), creds)
    assert not err.value.retriable


async def test_permission_denied_is_an_auth_error(fcm):
    state, client, creds = fcm
    state.faults = {"token-000001": "PERMISSION_DENIED"}
    with pytest.raises(AuthError, match="PERMISSION_DENIED"):
        await client.send(_job("token-000001"), creds)


async def test_wrong_project_is_refused(fcm):
    _, client, creds = fcm
    with pytest.raises(AuthError, match="403"):
        await client.send(_job("token-000001"), {**creds, "project_id": "other"})


async def test_expired_access_token_is_refreshed_once(fcm):
    state, client, creds = fcm
    await client.send(_job("token-000001"), creds)
    state.refuse_next = 1
    (result,) = await client.send(_job("token-000002"), creds)
    assert not result.error
    assert len(state.token_requests) == 2
    assert state.sends[-1]["authorization"] == "Bearer ya29.fake-2"


async def test_a_refusal_mid_batch_costs_one_refresh(fcm):
    state, client, creds = fcm
    await client.send(_job("token-000001"), creds)
    state.refuse_next = 1
    results = await client.send(_job(*(f"token-10000{i}" for i in range(8))), creds)
    assert [r.error for r in results] == [""] * 8
    assert len(state.token_requests) == 2


async def test_a_failing_token_endpoint_fails_the_job_once(fcm):
    state, client, creds = fcm
    state.token_statuses = [503, 503]
    with pytest.raises(TransientError, match="503"):
        await client.send(_job(*(f"token-{i:06}" for i in range(150))), creds)
    assert state.token_attempts == 1 and not state.sends


async def test_a_second_refusal_is_an_auth_error(fcm):
    state, client, creds = fcm
    state.refuse_next = 2
    with pytest.raises(AuthError) as err:
        await client.send(_job("token-000001"), creds)
    assert not err.value.retriable
    assert "UNAUTHENTICATED" in err.value.reason
    assert creds["private_key"].splitlines()[1] not in err.value.reason
    assert len(state.token_requests) == 2 and not state.sends


async def test_token_is_reused_and_refreshed_only_near_expiry(fcm, clock):
    state, client, creds = fcm
    await asyncio.gather(*(client.send(_job(f"token-00000{i}"), creds) for i in range(5)))
    assert len(state.token_requests) == 1
    clock.now = NOW + 3600 - 61
    await client.send(_job("token-000001"), creds)
    assert len(state.token_requests) == 1
    clock.now = NOW + 3600 - 59
    await client.send(_job("token-000001"), creds)
    assert len(state.token_requests) == 2
    assert state.token_requests[1]["iat"] == int(clock.now)


async def test_unknown_key_is_an_auth_error_without_the_key(fcm):
    state, client, creds = fcm
    other = ServiceAccount("herald-test", creds["client_email"], "kid-1",
                           rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(AuthError, match="invalid_grant") as err:
        await client.send(_job("token-000001"), other.credentials(creds["token_uri"]))
    assert "PRIVATE KEY" not in err.value.reason
    assert not state.token_requests and not state.sends


async def test_payload_too_large_is_refused_before_sending(fcm):
    state, client, creds = fcm
    message = Message(title="t" * 256, body="b" * 4000)
    with pytest.raises(PayloadTooLargeError):
        await client.send(_job("token-000001", message=message), creds)
    assert not state.token_requests and not state.sends


def test_credentials_name_the_missing_field_and_hide_the_key(account):
    creds = account.credentials("https://oauth2.googleapis.com/token")
    for name in ("project_id", "client_email", "private_key_id", "private_key"):
        with pytest.raises(ValueError, match=name):
            Credentials.from_mapping({k: v for k, v in creds.items() if k != name})
    with pytest.raises(ValueError, match="private_key"):
        Credentials.from_mapping({**creds, "private_key": "not a key"})
    parsed = Credentials.from_mapping({k: v for k, v in creds.items() if k != "token_uri"})
    assert parsed.token_uri == "https://oauth2.googleapis.com/token"
    assert "PRIVATE" not in repr(parsed)


def test_data_values_become_strings():
    assert [data_value(v) for v in ("x", 1, 1.5, True, False, None)] == [
        "x", "1", "1.5", "true", "false", "null"]


def test_payload_maps_every_notification_field():
    message = Message(title="T", body="B", image="https://i/p.png", large_icon="https://i/l.png",
                      small_icon="ic_stat", sound="ding", channel_id="news", badge=7,
                      badge_add=None, category="IM", collapse_id="c1", priority="normal",
                      click=ClickAction(type="intent", target="com.app.OPEN"), data={"k": 2})
    assert build_payload(message, token="tok", ttl_s=None) == {"message": {
        "token": "tok",
        "notification": {"title": "T", "body": "B", "image": "https://i/p.png"},
        "data": {"k": "2"},
        "android": {"priority": "NORMAL", "collapse_key": "c1",
                    "notification": {"channel_id": "news", "sound": "ding", "icon": "ic_stat",
                                     "tag": "c1", "click_action": "com.app.OPEN",
                                     "notification_count": 7}}}}


@pytest.mark.parametrize("click", [ClickAction(type="url", target="https://x"),
                                   ClickAction(type="deeplink", target="app://x"),
                                   ClickAction()])
def test_payload_drops_what_fcm_cannot_carry(click):
    message = Message(body="B", badge_add=2, click=click, push_type="background")
    assert build_payload(message, token="tok", ttl_s=0) == {"message": {
        "token": "tok", "notification": {"body": "B"},
        "android": {"priority": "NORMAL", "ttl": "0s"}}}


def test_data_message_carries_data_only():
    message = Message(kind="data", title="T", data={"call": "c1"}, sound="ring", badge=1,
                      push_type="voip")
    assert build_payload(message, token="tok", ttl_s=30) == {"message": {
        "token": "tok", "data": {"call": "c1"}, "android": {"priority": "HIGH", "ttl": "30s"}}}


@pytest.mark.parametrize("key", ["from", "gcm", "google.sent_time"])
def test_reserved_data_keys_are_refused(key):
    with pytest.raises(RejectedError, match=key):
        build_payload(Message(kind="data", data={key: 1}), token="tok", ttl_s=None)
