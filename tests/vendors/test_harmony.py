"""The Push Kit client against a fake Push Kit that checks the PS256 JWT, push-type and body."""

from __future__ import annotations

import zlib

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from proto.message import ClickAction, Message
from tests.vendors.helpers import Clock, job_factory, outcomes
from tests.vendors.servers.base import serve
from tests.vendors.servers.harmony import TOKEN_URI, HarmonyAccount, HarmonyState, harmony_app
from vendors.errors import (
    AuthError,
    NotSupportedError,
    PayloadTooLargeError,
    RateLimitedError,
    RejectedError,
    TransientError,
)
from vendors.harmony import Credentials, HarmonyClient, PushType, build_payload, push_type_of

NOW = 1_700_000_000.0


@pytest.fixture(scope="module")
def account() -> HarmonyAccount:
    return HarmonyAccount("101653523863", "300125961", "c60c27b8f2f34e9b",
                          rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
async def push(account, clock):
    state = HarmonyState(account, clock)
    async with serve(harmony_app(state)) as served:
        client = HarmonyClient(base_url=served.url, verify=served.verify, clock=clock)
        yield state, client, account.credentials()
        await client.close()


_job = job_factory()
_outcomes = outcomes


async def test_send_signs_a_jwt_and_posts_the_exact_body(push, account):
    state, client, creds = push
    message = Message(title="Hi", body="There", category="IM", badge_add=1, data={"chat": 7})
    results = await client.send(_job("MAAALgE4G98BAAAA1", "MAAALgE4G98BAAAA2", message=message,
                                     expires_at_ms=int((NOW + 90) * 1000)), creds)
    assert _outcomes(results) == [("rid-MAAALgE4G98BAAAA1", "", False),
                                  ("rid-MAAALgE4G98BAAAA2", "", False)]
    (sent,) = state.sends
    assert sent["push_type"] == "0"
    assert sent["content_type"].startswith("application/json")
    assert sent["body"] == {
        "payload": {"notification": {"category": "IM", "title": "Hi", "body": "There",
                                     "clickAction": {"actionType": 0, "data": {"chat": 7}},
                                     "badge": {"addNum": 1},
                                     "notifyId": zlib.crc32(b"m1") & 0x7FFFFFFF}},
        "target": {"token": ["MAAALgE4G98BAAAA1", "MAAALgE4G98BAAAA2"]},
        "pushOptions": {"ttl": 90}}
    (bearer,) = state.jwts
    assert jwt.get_unverified_header(bearer) == {"alg": "PS256", "typ": "JWT",
                                                 "kid": account.key_id}
    assert jwt.decode(bearer, options={"verify_signature": False}) == {
        "aud": TOKEN_URI, "iss": account.sub_account, "iat": int(NOW), "exp": int(NOW) + 3600}


async def test_partial_success_fails_exactly_the_illegal_tokens(push):
    state, client, creds = push
    state.invalid_tokens = {"MAAAotherproject": "noRight", "MAAAnovoipright": "noPushTypeRight"}
    results = await client.send(_job("MAAAgood00001", "bad token", "MAAAotherproject",
                                     "MAAAnovoipright", "MAAAgood00002"), creds)
    assert _outcomes(results) == [
        ("rid-MAAAgood00001", "", False),
        ("rid-bad token", "tokenFormatError", True),
        ("rid-MAAAotherproject", "noRight", True),
        ("rid-MAAAnovoipright", "noPushTypeRight", False),
        ("rid-MAAAgood00002", "", False)]


async def test_all_invalid_keeps_tokens_that_may_be_the_apps_misconfiguration(push):
    state, client, creds = push
    state.invalid_tokens = {"MAAAotherproject": "noRight"}
    results = await client.send(_job("MAAAotherproject", "bad token"), creds)
    assert _outcomes(results) == [("rid-MAAAotherproject", "noRight", False),
                                  ("rid-bad token", "tokenFormatError", True)]


async def test_test_message_quota_is_a_rate_limit(push):
    state, client, creds = push
    state.codes = ["80300029"]
    with pytest.raises(RateLimitedError, match="80300029") as err:
        await client.send(_job("MAAAgood00001"), creds)
    assert err.value.retriable


async def test_http_429_carries_retry_after(push):
    state, client, creds = push
    state.statuses, state.retry_after = [429], "12"
    with pytest.raises(RateLimitedError) as err:
        await client.send(_job("MAAAgood00001"), creds)
    assert err.value.retry_after_s == 12


@pytest.mark.parametrize(("status", "code"), [(500, ""), (503, ""), (0, "81000001")])
async def test_server_errors_are_transient(push, status, code):
    state, client, creds = push
    state.statuses, state.codes = [status] if status else [], [code] if code else []
    with pytest.raises(TransientError) as err:
        await client.send(_job("MAAAgood00001"), creds)
    assert err.value.retriable


async def test_other_codes_are_rejected_with_code_and_message(push):
    state, client, creds = push
    state.codes = ["80100003"]
    with pytest.raises(RejectedError, match="80100003 Illegal payload") as err:
        await client.send(_job("MAAAgood00001"), creds)
    assert not err.value.retriable


async def test_expired_jwt_is_signed_again_once(push):
    state, client, creds = push
    state.refuse_next = 1
    (result,) = await client.send(_job("MAAAgood00001"), creds)
    assert not result.error
    assert len(state.jwts) == 2 and state.jwts[0] != state.jwts[1]
    assert len(state.sends) == 1


async def test_a_second_refusal_is_an_auth_error(push):
    state, client, creds = push
    state.refuse_next = 2
    with pytest.raises(AuthError, match="80200005") as err:
        await client.send(_job("MAAAgood00001"), creds)
    assert not err.value.retriable
    assert "PRIVATE KEY" not in err.value.reason
    assert not state.sends


async def test_a_foreign_key_is_an_auth_error(push, account):
    state, client, _ = push
    forged = HarmonyAccount(account.project_id, account.sub_account, account.key_id,
                            rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(AuthError, match="80200001"):
        await client.send(_job("MAAAgood00001"), forged.credentials())
    assert not state.sends


async def test_a_key_that_cannot_sign_is_an_auth_error(push):
    state, client, creds = push
    broken = {**creds, "private_key": "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n"
                                      "-----END PRIVATE KEY-----\n"}
    with pytest.raises(AuthError, match="cannot sign PS256") as err:
        await client.send(_job("MAAAgood00001"), broken)
    assert "c2VjcmV0" not in err.value.reason
    assert not state.sends


async def test_jwt_is_reused_and_signed_again_only_near_expiry(push, clock):
    state, client, creds = push
    for _ in range(3):
        await client.send(_job("MAAAgood00001"), creds)
    clock.now = NOW + 3600 - 61
    await client.send(_job("MAAAgood00001"), creds)
    assert len(set(state.jwts)) == 1
    clock.now = NOW + 3600 - 59
    await client.send(_job("MAAAgood00001"), creds)
    assert len(set(state.jwts)) == 2
    assert jwt.decode(state.jwts[-1], options={"verify_signature": False})["iat"] == int(
        clock.now)


async def test_payload_too_large_is_refused_before_sending(push):
    state, client, creds = push
    with pytest.raises(PayloadTooLargeError):
        await client.send(_job("MAAAgood00001", message=Message(body="b" * 4096)), creds)
    assert not state.jwts and not state.sends


@pytest.mark.parametrize(("message", "push_type"), [
    (Message(kind="data", data={"k": 1}), "6"),
    (Message(title="t", push_type="background"), "6"),
    (Message(kind="data", data={"call": "c1"}, push_type="voip"), "10")])
async def test_scenarios_go_with_their_push_type(push, message, push_type):
    state, client, creds = push
    await client.send(_job("MAAAgood00001", message=message), creds)
    assert state.sends[0]["push_type"] == push_type


async def test_revoke_names_the_notify_id_the_alert_was_sent_with(push, account):
    state, client, creds = push
    job = _job("MAAAgood00001", "MAAAgood00002")
    await client.send(job, creds)
    await client.revoke(job, creds)
    (revoke,) = state.revokes
    sent_id = state.sends[0]["body"]["payload"]["notification"]["notifyId"]
    assert revoke == {"push_type": "0", "body": {
        "notifyId": sent_id, "token": ["MAAAgood00001", "MAAAgood00002"]}}
    collapsed = _job("MAAAgood00001", message=Message(title="t", collapse_id="c1"))
    await client.revoke(collapsed, creds)
    assert state.revokes[1]["body"]["notifyId"] == zlib.crc32(b"c1") & 0x7FFFFFFF


async def test_revoke_needs_the_client_id_and_an_alert(push):
    state, client, creds = push
    with pytest.raises(AuthError, match="client_id"):
        await client.revoke(_job("MAAAgood00001"), {**creds, "client_id": ""})
    with pytest.raises(NotSupportedError, match="notifications only"):
        await client.revoke(_job("MAAAgood00001", message=Message(kind="data", data={"k": 1})),
                            creds)
    assert client.can_revoke and not state.revokes


async def test_revoke_refusal_is_rejected(push):
    _, client, creds = push
    with pytest.raises(RejectedError, match="80300010"):
        await client.revoke(_job(), creds)


def test_credentials_name_the_missing_field_and_hide_the_key(account):
    creds = account.credentials()
    for name in ("project_id", "key_id", "sub_account", "private_key"):
        with pytest.raises(ValueError, match=name):
            Credentials.from_mapping({k: v for k, v in creds.items() if k != name})
    with pytest.raises(ValueError, match="test_message"):
        Credentials.from_mapping({**creds, "test_message": "maybe"})
    parsed = Credentials.from_mapping({**creds, "test_message": "true"})
    assert parsed.test_message and parsed.token_uri == TOKEN_URI
    assert "PRIVATE" not in repr(parsed)


def test_alert_maps_every_notification_field():
    message = Message(title="T", body="B", image="https://i/p.png", large_icon="https://i/l.png",
                      category="WORK", badge=5, collapse_id="c1",
                      click=ClickAction(type="intent", target="com.app.OPEN"), data={"k": 1},
                      sound="ding", small_icon="ic", channel_id="news", priority="high")
    assert push_type_of(message) is PushType.ALERT
    assert build_payload(message, ["tok"], ttl_s=None, test_message=True) == {
        "payload": {"notification": {
            "category": "WORK", "title": "T", "body": "B", "image": "https://i/l.png",
            "clickAction": {"actionType": 1, "action": "com.app.OPEN", "data": {"k": 1}},
            "badge": {"setNum": 5},
            "notifyId": zlib.crc32(b"c1") & 0x7FFFFFFF}},
        "target": {"token": ["tok"]},
        "pushOptions": {"testMessage": True}}


@pytest.mark.parametrize("click", [ClickAction(type="url", target="https://x/y"),
                                   ClickAction(type="deeplink", target="app://x/y")])
def test_uri_clicks_open_the_matching_ability(click):
    notification = build_payload(Message(body="B", click=click, image="http://i/p.png"),
                                 ["tok"], ttl_s=0)["payload"]["notification"]
    assert notification == {"category": "MARKETING", "title": "", "body": "B",
                            "clickAction": {"actionType": 1, "uri": click.target}}


@pytest.mark.parametrize(("message", "push_type"), [
    (Message(kind="data", title="T", data={"k": 1, "s": "x"}, badge=3), PushType.BACKGROUND),
    (Message(title="T", data={"k": 1, "s": "x"}, push_type="voip"), PushType.VOIP_CALL)])
def test_silent_scenarios_carry_data_only(message, push_type):
    assert push_type_of(message) is push_type
    assert build_payload(message, ["tok"], ttl_s=30) == {
        "payload": {"extraData": '{"k":1,"s":"x"}'}, "target": {"token": ["tok"]},
        "pushOptions": {"ttl": 30}}
