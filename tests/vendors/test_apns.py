"""The APNs client against the fake APNs over HTTP/2 and TLS, and its pure mapping."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from proto.envelopes import VendorJob, VendorTarget
from proto.message import ClickAction, Message
from tests.harness import eventually, free_port
from tests.vendors.helpers import Clock
from tests.vendors.servers.apns import ApnsState, fake_apns
from tests.vendors.servers.base import serve
from vendors.apns import ApnsClient, Credentials, build_headers, build_payload
from vendors.client import TargetResult
from vendors.errors import (
    AuthError,
    PayloadTooLargeError,
    RateLimitedError,
    RejectedError,
    TransientError,
)

TEAM, KEY_ID, BUNDLE = "TEAM123456", "KEY1234567", "com.example.chat"
KEY = ec.generate_private_key(ec.SECP256R1())
PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption()).decode()
CREDS = {"team_id": TEAM, "key_id": KEY_ID, "bundle_id": BUNDLE, "environment": "production",
         "private_key": PEM}
START = 1_750_000_000.0
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def tok(n: int) -> str:
    return f"{n:064x}"


def _job(message: Message, *tokens: str, expires_at_ms: int = 0) -> VendorJob:
    return VendorJob(app_id="app", task_id="t1", msg_id="t1", message=message,
                     targets=[VendorTarget(f"rid-{t[-4:]}", t) for t in tokens],
                     expires_at_ms=expires_at_ms)


HELLO = Message(title="hi", body="there")


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
async def apns(clock):
    state, app = fake_apns(team_id=TEAM, key_id=KEY_ID, bundle_id=BUNDLE,
                           public_key=KEY.public_key(), clock=clock)
    async with serve(app, tls=True) as served:
        yield state, served


@pytest.fixture
async def client(apns, clock):
    _, served = apns
    client = ApnsClient(base_url=served.url, sandbox_url=served.url, verify=served.verify,
                        timeout_s=5, clock=clock)
    yield client
    await client.close()


@pytest.fixture
def state(apns) -> ApnsState:
    return apns[0]


async def test_alert_is_sent_per_device_over_one_http2_connection(client, state):
    message = Message(title="hi", body="there", data={"conv": "c1", "n": 2}, badge=3,
                      sound="ping.caf", priority="high", collapse_id="conv-c1")
    job = _job(message, tok(1), tok(2), expires_at_ms=int(START * 1000) + 3_600_500)
    results = await client.send(job, CREDS)
    assert results == [_ok(tok(1)), _ok(tok(2))]
    assert sorted(r.device_token for r in state.delivered()) == [tok(1), tok(2)]
    assert {r.http_version for r in state.requests} == {"2"}
    assert len({r.peer for r in state.requests}) == 1
    apns_ids = set()
    for request in state.requests:
        assert request.payload == {"aps": {"alert": {"title": "hi", "body": "there"},
                                           "badge": 3, "sound": "ping.caf"},
                                   "conv": "c1", "n": 2}
        h = request.headers
        assert (h["apns-topic"], h["apns-push-type"], h["apns-priority"]) == (
            BUNDLE, "alert", "10")
        assert h["apns-expiration"] == str(int(START) + 3601)
        assert h["apns-collapse-id"] == "conv-c1"
        assert UUID.match(h["apns-id"])
        apns_ids.add(h["apns-id"])
        scheme, token = h["authorization"].split(" ")
        assert scheme == "bearer"
        assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": KEY_ID}
        assert jwt.decode(token, KEY.public_key(), algorithms=["ES256"],
                          options={"verify_iat": False}) == {"iss": TEAM, "iat": int(START)}
    assert len(apns_ids) == 2


async def test_data_message_is_a_background_push_with_priority_5(client, state):
    message = Message(kind="data", data={"sync": True}, priority="high", badge=1)
    assert await client.send(_job(message, tok(1)), CREDS) == [_ok(tok(1))]
    (request,) = state.delivered()
    assert request.payload == {"aps": {"content-available": 1}, "sync": True}
    h = request.headers
    assert (h["apns-topic"], h["apns-push-type"], h["apns-priority"]) == (
        BUNDLE, "background", "5")
    assert (h["apns-expiration"], h["apns-collapse-id"]) == ("0", "t1")


async def test_voip_uses_the_voip_topic_and_its_larger_payload_limit(client, state):
    message = Message(title="Ann calling", data={"call": "x" * 4080}, push_type="voip",
                      priority="high")
    assert await client.send(_job(message, tok(1)), CREDS) == [_ok(tok(1))]
    (request,) = state.delivered()
    h = request.headers
    assert (h["apns-topic"], h["apns-push-type"], h["apns-priority"]) == (
        f"{BUNDLE}.voip", "voip", "10")
    assert request.payload["aps"] == {"alert": {"title": "Ann calling"}}
    assert len(json.dumps(request.payload, separators=(",", ":"))) > 4096
    with pytest.raises(PayloadTooLargeError):
        await client.send(_job(Message(title="Ann", data={"call": "x" * 4080}), tok(1)), CREDS)


async def test_invalid_tokens_fail_alone_in_a_job(client, state):
    state.answers = {tok(2): (410, "Unregistered"), tok(3): (400, "DeviceTokenNotForTopic"),
                     tok(5): (400, "ReasonNewToHerald")}
    job = _job(HELLO, tok(1), tok(2), tok(3), "not-hex/../x", tok(5))
    results = await client.send(job, CREDS)
    assert [(r.error, r.token_invalid) for r in results] == [
        ("", False), ("Unregistered", True), ("DeviceTokenNotForTopic", True),
        ("BadDeviceToken", True), ("ReasonNewToHerald", False)]
    assert [r.registration_id for r in results] == [t.registration_id for t in job.targets]
    assert "not-hex/../x" in {r.device_token for r in state.requests}


async def test_rate_limit_carries_retry_after(client, state):
    state.statuses, state.retry_after = [429], "7"
    with pytest.raises(RateLimitedError) as err:
        await client.send(_job(HELLO, tok(1)), CREDS)
    assert err.value.retriable and err.value.retry_after_s == 7


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_transient(client, state, status):
    state.statuses = [status]
    with pytest.raises(TransientError, match=str(status)):
        await client.send(_job(HELLO, tok(1)), CREDS)


async def test_one_transient_failure_asks_a_retry_of_that_device_alone(client, state):
    state.answers = {tok(2): (500, "InternalServerError")}
    results = await client.send(_job(HELLO, tok(1), tok(2), tok(3)), CREDS)
    assert len(state.delivered()) == 2
    assert [(r.error, r.retriable) for r in results] == [
        ("", False), ("HTTP 500 from /3/device/" + tok(2), True), ("", False)]


async def test_a_refusal_after_some_went_through_fails_that_device_for_good(client, state):
    state.answers = {tok(2): (404, "BadPath")}
    results = await client.send(_job(HELLO, tok(1), tok(2)), CREDS)
    assert [(r.error, r.retriable) for r in results] == [("", False), ("APNs 404 BadPath", False)]


async def test_transient_failures_of_every_device_fail_the_job(client, state):
    state.answers = {tok(1): (500, "InternalServerError"), tok(2): (503, "Unavailable")}
    with pytest.raises(TransientError):
        await client.send(_job(HELLO, tok(1), tok(2)), CREDS)


async def test_refusals_of_the_request_reject_the_job(client, state):
    creds = {**CREDS, "bundle_id": "com.example.other"}
    with pytest.raises(RejectedError, match="400 BadTopic") as err:
        await client.send(_job(HELLO, tok(1), tok(2)), creds)
    assert not err.value.retriable


async def test_expired_provider_token_is_renewed_once_for_all_requests(client, state, clock):
    await client.send(_job(HELLO, tok(1)), CREDS)
    state.expired_jwts = {state.jwts[0]}
    clock.at_minute(5)
    results = await client.send(_job(HELLO, *(tok(n) for n in range(20))), CREDS)
    assert results == [_ok(tok(n)) for n in range(20)]
    assert len(state.jwts) == 2
    assert jwt.decode(state.jwts[1], options={"verify_signature": False})["iat"] == \
        int(START) + 300
    assert sum(r.reason == "ExpiredProviderToken" for r in state.requests) == 20


async def test_provider_token_refused_after_renewal_is_an_auth_error(client, state):
    state.every_token_expired = True
    with pytest.raises(AuthError, match="ExpiredProviderToken") as err:
        await client.send(_job(HELLO, tok(1)), CREDS)
    assert not err.value.retriable
    assert len(state.jwts) == 2 and len(state.requests) == 2


async def test_invalid_provider_token_is_an_auth_error_without_renewal(client, state):
    state.public_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(AuthError, match="InvalidProviderToken"):
        await client.send(_job(HELLO, tok(1), tok(2)), CREDS)
    assert len(state.jwts) == 1 and len(state.requests) == 2


async def test_provider_token_is_reused_for_50_minutes_then_renewed(client, state, clock):
    # The fake refuses a token renewed within 20 minutes and one older than 60: the client
    # must satisfy both while sending every minute, many requests at a time.
    for minute in range(50):
        clock.at_minute(minute)
        await client.send(_job(HELLO, *(tok(n) for n in range(10))), CREDS)
    assert len(state.jwts) == 1
    for minute in range(50, 100):
        clock.at_minute(minute)
        await client.send(_job(HELLO, tok(1)), CREDS)
    assert [_iat(t) for t in state.jwts] == [int(START), int(START) + 50 * 60]
    clock.at_minute(100)
    await client.send(_job(HELLO, tok(1)), CREDS)
    assert len(state.jwts) == 3
    assert all(r.status == 200 for r in state.requests)


async def test_token_older_than_an_hour_is_never_sent(client, state, clock):
    await client.send(_job(HELLO, tok(1)), CREDS)
    clock.at_minute(61)
    await client.send(_job(HELLO, tok(1)), CREDS)
    assert [r.status for r in state.requests] == [200, 200]
    assert len(state.jwts) == 2


async def test_concurrency_is_bounded_on_one_connection(apns, clock):
    state, served = apns
    state.holding = True
    client = ApnsClient(base_url=served.url, verify=served.verify, clock=clock, max_streams=3)
    sending = asyncio.create_task(client.send(_job(HELLO, *(tok(n) for n in range(12))), CREDS))
    # Release held requests one at a time: a client that kept more than 3 in flight would
    # show more held requests, and never come back to exactly 3.
    for left in range(12, 0, -1):
        expected = min(3, left)
        await eventually(lambda n=expected: len(state.held) == n, 5,
                         f"{expected} requests in flight")
        state.held.pop(0).set()
    results = await sending
    await client.close()
    assert len(results) == 12 and not any(r.error for r in results)
    assert state.peak == 3
    assert len({r.peer for r in state.requests}) == 1


async def test_development_credentials_use_the_sandbox_host(apns, clock):
    state, served = apns
    client = ApnsClient(base_url=f"https://127.0.0.1:{free_port()}", sandbox_url=served.url,
                        verify=served.verify, clock=clock)
    results = await client.send(_job(HELLO, tok(1)), {**CREDS, "environment": "development"})
    with pytest.raises(TransientError, match="ConnectError"):
        await client.send(_job(HELLO, tok(1)), CREDS)
    await client.close()
    assert results == [_ok(tok(1))] and len(state.requests) == 1


async def test_payload_too_large_is_refused_before_sending(client, state):
    with pytest.raises(PayloadTooLargeError, match="4096"):
        await client.send(_job(Message(title="t", body="é" * 2100), tok(1)), CREDS)
    assert state.requests == []


async def test_bad_credentials_are_an_auth_error_and_nothing_is_sent(client, state):
    with pytest.raises(AuthError, match="lack 'key_id'") as err:
        await client.send(_job(HELLO, tok(1)), {**CREDS, "key_id": ""})
    assert PEM not in str(err.value) and state.requests == []


@pytest.mark.parametrize(("missing", "error"), [
    ("team_id", "lack 'team_id'"), ("key_id", "lack 'key_id'"),
    ("bundle_id", "lack 'bundle_id'"), ("environment", "lack 'environment'"),
    ("private_key", "lack 'private_key'")])
def test_credentials_name_the_missing_field(missing, error):
    with pytest.raises(ValueError, match=error):
        Credentials.from_mapping({k: v for k, v in CREDS.items() if k != missing})


@pytest.mark.parametrize(("field", "value", "error"), [
    ("environment", "staging", "environment must be"),
    ("private_key", "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----",
     "not a PEM private key"),
    ("private_key", ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode(), "not a P-256")])
def test_credentials_refuse_bad_values_without_echoing_them(field, value, error):
    with pytest.raises(ValueError, match=error) as err:
        Credentials.from_mapping({**CREDS, field: value})
    assert value not in str(err.value)


def test_credentials_repr_hides_the_key():
    creds = Credentials.from_mapping(CREDS)
    assert "PRIVATE" not in repr(creds) and TEAM in repr(creds)


# The mapping: every Message field is mapped or dropped as the module docstring says.

def test_alert_payload_maps_every_visible_field():
    message = Message(title="T", body="B", data={"k": 1}, badge=0, sound="default",
                      image="https://img/x.png", category="INVITE",
                      click=ClickAction(type="deeplink", target="app://conv/1"))
    assert build_payload(message) == {
        "aps": {"alert": {"title": "T", "body": "B"}, "badge": 0, "sound": "default",
                "category": "INVITE", "mutable-content": 1},
        "k": 1,
        "herald": {"image": "https://img/x.png",
                   "click": {"type": "deeplink", "target": "app://conv/1"}}}


@pytest.mark.parametrize("message", [
    Message(body="B", badge_add=2), Message(body="B", small_icon="ic", large_icon="https://i"),
    Message(body="B", channel_id="chats"), Message(body="B", click=ClickAction()),
    Message(body="B", click=ClickAction(type="intent", target="intent://x"))])
def test_fields_apns_cannot_carry_are_dropped(message):
    assert build_payload(message) == {"aps": {"alert": {"body": "B"}}}


def test_url_click_goes_to_the_app():
    message = Message(body="B", click=ClickAction(type="url", target="https://x"))
    assert build_payload(message)["herald"] == {"click": {"type": "url", "target": "https://x"}}


def test_background_push_carries_only_content_available_and_data():
    message = Message(title="T", body="B", badge=1, sound="s", image="https://i",
                      category="C", data={"k": "v"}, push_type="background")
    assert build_payload(message) == {"aps": {"content-available": 1}, "k": "v"}


def test_voip_data_message_carries_its_data():
    message = Message(kind="data", data={"call": "c1"}, push_type="voip", badge=1)
    assert build_payload(message) == {"aps": {}, "call": "c1"}


@pytest.mark.parametrize("key", ["aps", "herald"])
def test_reserved_data_keys_are_refused(key):
    with pytest.raises(RejectedError, match=key):
        build_payload(Message(body="B", data={key: 1}))


@pytest.mark.parametrize(("message", "expected"), [
    (Message(body="B"), ("alert", "5", "com.a")),
    (Message(body="B", priority="high"), ("alert", "10", "com.a")),
    (Message(body="B", priority="high", push_type="background"), ("background", "5", "com.a")),
    (Message(kind="data", data={"k": 1}, priority="high"), ("background", "5", "com.a")),
    (Message(body="B", push_type="voip"), ("voip", "5", "com.a.voip")),
    (Message(kind="data", data={"k": 1}, push_type="voip", priority="high"),
     ("voip", "10", "com.a.voip"))])
def test_push_type_priority_and_topic(message, expected):
    h = build_headers(message, bundle_id="com.a", msg_id="m1", expires_at_ms=0, now_s=START)
    assert (h["apns-push-type"], h["apns-priority"], h["apns-topic"]) == expected


@pytest.mark.parametrize(("expires_at_ms", "expiration"), [
    (0, "0"), (int(START * 1000) - 1, "0"), (int(START * 1000) + 1, str(int(START) + 1)),
    (int(START * 1000) + 60_000, str(int(START) + 60))])
def test_expiration_is_absolute_seconds_or_zero(expires_at_ms, expiration):
    h = build_headers(HELLO, bundle_id="b", msg_id="m", expires_at_ms=expires_at_ms,
                      now_s=START)
    assert h["apns-expiration"] == expiration


def test_collapse_id_defaults_to_the_message_id_and_is_bounded_in_bytes():
    h = build_headers(HELLO, bundle_id="b", msg_id="m1", expires_at_ms=0, now_s=START)
    assert h["apns-collapse-id"] == "m1"
    h = build_headers(Message(body="B", collapse_id="c"), bundle_id="b", msg_id="m1",
                      expires_at_ms=0, now_s=START)
    assert h["apns-collapse-id"] == "c"
    with pytest.raises(RejectedError, match="64 bytes"):
        build_headers(Message(body="B", collapse_id="é" * 33), bundle_id="b", msg_id="m",
                      expires_at_ms=0, now_s=START)


# The fake itself refuses what APNs refuses (so the tests above can fail).

def _token(kid: str = KEY_ID, iat: float = START, key: ec.EllipticCurvePrivateKey = KEY) -> str:
    return jwt.encode({"iss": TEAM, "iat": int(iat)}, key, algorithm="ES256",
                      headers={"kid": kid})


_GOOD = {"apns-topic": BUNDLE, "apns-push-type": "alert", "apns-priority": "10"}


@pytest.mark.parametrize(("headers", "path", "body", "status", "reason"), [
    ({}, f"/3/device/{tok(1)}", b'{"aps":{}}', 200, ""),
    ({"authorization": ""}, f"/3/device/{tok(1)}", b"{}", 403, "MissingProviderToken"),
    ({"authorization": f"bearer {_token(kid='OTHER')}"}, f"/3/device/{tok(1)}", b"{}", 403,
     "InvalidProviderToken"),
    ({"authorization": f"bearer {_token(iat=START - 3601)}"}, f"/3/device/{tok(1)}", b"{}",
     403, "ExpiredProviderToken"),
    ({"apns-topic": "com.other"}, f"/3/device/{tok(1)}", b"{}", 400, "BadTopic"),
    ({"apns-push-type": "loud"}, f"/3/device/{tok(1)}", b"{}", 400, "InvalidPushType"),
    ({"apns-push-type": "background", "apns-priority": "10"}, f"/3/device/{tok(1)}", b"{}",
     400, "BadPriority"),
    ({"apns-id": "NOT-A-UUID"}, f"/3/device/{tok(1)}", b"{}", 400, "BadMessageId"),
    ({}, "/3/device/abc", b"{}", 400, "BadDeviceToken"),
    ({}, "/2/device/x", b"{}", 404, "BadPath"),
    ({}, f"/3/device/{tok(1)}", b"x" * 4097, 413, "PayloadTooLarge")])
async def test_fake_apns_refuses_what_apns_refuses(apns, headers, path, body, status, reason):
    _, served = apns
    sent = {"authorization": f"bearer {_token()}", **_GOOD, **headers}
    async with httpx.AsyncClient(http2=True, verify=served.verify) as http:
        response = await http.post(served.url + path, content=body, headers=sent)
    assert response.http_version == "HTTP/2"
    assert (response.status_code, response.json()["reason"] if status != 200 else "") == (
        status, reason)


async def test_fake_apns_refuses_http1(apns):
    _, served = apns
    async with httpx.AsyncClient(http2=False, verify=served.verify) as http:
        response = await http.post(f"{served.url}/3/device/{tok(1)}", content=b"{}",
                                   headers={"authorization": f"bearer {_token()}", **_GOOD})
    assert (response.status_code, response.json()["reason"]) == (505, "HTTP2Required")


async def test_fake_apns_refuses_a_renewal_within_20_minutes(apns):
    _, served = apns
    async with httpx.AsyncClient(http2=True, verify=served.verify) as http:
        statuses = []
        for iat in (START, START + 60):
            response = await http.post(f"{served.url}/3/device/{tok(1)}", content=b"{}",
                                       headers={"authorization": f"bearer {_token(iat=iat)}",
                                                **_GOOD})
            statuses.append((response.status_code, response.content))
    assert statuses == [(200, b""), (429, b'{"reason": "TooManyProviderTokenUpdates"}')]


def _ok(token: str) -> TargetResult:
    return TargetResult(f"rid-{token[-4:]}")


def _iat(token: str) -> int:
    return jwt.decode(token, options={"verify_signature": False})["iat"]
