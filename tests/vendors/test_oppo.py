"""The OPPO PUSH client against the fake OPPO server, and its payload mapping."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from proto.message import ClickAction, Message
from tests.harness import free_port
from tests.vendors.helpers import Clock, job_factory
from tests.vendors.servers.base import serve
from tests.vendors.servers.oppo import fake_oppo
from vendors.client import TargetResult
from vendors.common import seconds_left, until_midnight
from vendors.errors import (
    AuthError,
    PayloadTooLargeError,
    RateLimitedError,
    RejectedError,
    TransientError,
)
from vendors.oppo import Credentials, OppoClient, build_payload, notify_id

APP_KEY, MASTER_SECRET = "oppo-app-key", "oppo-master-secret"
CREDS = {"app_key": APP_KEY, "master_secret": MASTER_SECRET}
#: 2023-11-15 06:13:20 in China: 17 h 46 min 40 s before midnight there.
T0 = 1_700_000_000.0


_job = job_factory(message=Message(title="Hello", body="World"))


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
async def server(clock):
    app, state = fake_oppo(APP_KEY, MASTER_SECRET, clock)
    async with serve(app, tls=True) as served:
        yield state, served


@pytest.fixture
def state(server):
    return server[0]


@pytest.fixture
async def client(server, clock):
    client = OppoClient(base_url=server[1].url, verify=server[1].verify, clock=clock)
    yield client
    await client.close()


async def test_batch_carries_the_signed_auth_and_the_exact_messages(client, state):
    message = Message(title="Order shipped", body="Your parcel is on its way",
                      data={"order": 42}, click=ClickAction(type="url", target="https://s.example/42"),
                      channel_id="orders", category="ORDER", priority="high",
                      collapse_id="order-42")
    job = _job("tok-a", "tok-b", message=message, expires_at_ms=int((T0 + 3600) * 1000))
    assert await client.send(job, CREDS) == [TargetResult("rid-tok-a"), TargetResult("rid-tok-b")]

    timestamp = str(int(T0 * 1000))
    signature = hashlib.sha256(f"{APP_KEY}{timestamp}{MASTER_SECRET}".encode()).hexdigest()
    assert state.auth_requests == [{"app_key": APP_KEY, "timestamp": timestamp,
                                    "sign": signature}]
    (batch,) = state.batches
    (token,) = state.tokens
    assert batch.headers["auth_token"] == batch.form["auth_token"] == token
    assert batch.headers["content-type"] == "application/x-www-form-urlencoded"
    notification = {"app_message_id": "m1", "style": 1, "title": "Order shipped",
                    "content": "Your parcel is on its way", "click_action_type": 2,
                    "click_action_url": "https://s.example/42", "off_line": True,
                    "action_parameters": '{"order":42}', "channel_id": "orders",
                    "category": "ORDER", "notify_level": 16, "notify_id": notify_id("order-42"),
                    "off_line_ttl": 3600}
    assert batch.messages == [
        {"target_type": 2, "target_value": "tok-a", "notification": notification},
        {"target_type": 2, "target_value": "tok-b", "notification": notification}]


async def test_invalid_registration_ids_fail_alone(client, state):
    state.invalid_tokens = {"tok-b"}
    results = await client.send(_job("tok-a", "tok-b", "tok-c"), CREDS)
    assert results == [TargetResult("rid-tok-a"),
                       TargetResult("rid-tok-b", error="10000 Invalid Registration_id",
                                    token_invalid=True),
                       TargetResult("rid-tok-c")]


async def test_http_429_carries_retry_after(client, state):
    await client.send(_job("warm"), CREDS)
    state.statuses, state.retry_after = [429], "7"
    with pytest.raises(RateLimitedError) as err:
        await client.send(_job("tok"), CREDS)
    assert err.value.retriable and err.value.retry_after_s == 7


async def test_daily_quota_waits_for_midnight_in_china(client, state):
    state.codes = [33]
    with pytest.raises(RateLimitedError, match="daily limit") as err:
        await client.send(_job("tok"), CREDS)
    assert err.value.retry_after_s == 17 * 3600 + 46 * 60 + 40


@pytest.mark.parametrize(("code", "error", "retriable"), [
    (-1, TransientError, True), (-2, RateLimitedError, True), (13, RateLimitedError, True),
    (55, RateLimitedError, True), (41, RejectedError, False), (30, RejectedError, False)])
async def test_result_codes_map_to_errors(client, state, code, error, retriable):
    state.codes = [code]
    with pytest.raises(error) as err:
        await client.send(_job("tok"), CREDS)
    assert type(err.value) is error and err.value.retriable is retriable
    assert f"OPPO code {code}" in err.value.reason


@pytest.mark.parametrize(("status", "error"), [(500, TransientError), (503, TransientError),
                                               (400, RejectedError), (404, RejectedError)])
async def test_http_statuses_map_to_errors(client, state, status, error):
    await client.send(_job("warm"), CREDS)
    state.statuses = [status]
    with pytest.raises(error, match=str(status)):
        await client.send(_job("tok"), CREDS)


async def test_unreachable_oppo_is_transient(clock):
    client = OppoClient(base_url=f"http://127.0.0.1:{free_port()}", timeout_s=2, clock=clock)
    with pytest.raises(TransientError, match="ConnectError"):
        await client.send(_job("tok"), CREDS)
    await client.close()


async def test_a_refused_token_is_refreshed_once(client, state):
    await client.send(_job("tok"), CREDS)
    state.expire_tokens()
    assert await client.send(_job("tok"), CREDS) == [TargetResult("rid-tok")]
    assert len(state.auth_requests) == 2
    first, refused, retried = (b.form["auth_token"] for b in state.batches)
    assert refused == first != retried


async def test_a_second_refusal_is_an_auth_error(client, state):
    state.refuse_tokens = True
    with pytest.raises(AuthError, match="code 11") as err:
        await client.send(_job("tok"), CREDS)
    assert not err.value.retriable
    assert len(state.auth_requests) == 2 and len(state.batches) == 2


async def test_token_is_reused_until_shortly_before_it_expires(client, state, clock):
    await client.send(_job("tok"), CREDS)
    await client.send(_job("tok"), CREDS)
    clock.now = T0 + 24 * 3600 - 61
    await client.send(_job("tok"), CREDS)
    assert len(state.auth_requests) == 1
    clock.now = T0 + 24 * 3600 - 59
    await client.send(_job("tok"), CREDS)
    assert len(state.auth_requests) == 2
    tokens = [b.form["auth_token"] for b in state.batches]
    assert tokens[0] == tokens[1] == tokens[2] != tokens[3]


async def test_concurrent_sends_of_an_app_make_one_auth_request(client, state):
    await asyncio.gather(*(client.send(_job(f"tok-{i}"), CREDS) for i in range(5)))
    assert len(state.auth_requests) == 1 and len(state.batches) == 5


async def test_data_too_large_for_action_parameters_is_refused_before_sending(client, state):
    message = Message(title="t", data={"blob": "x" * 3990})
    with pytest.raises(PayloadTooLargeError, match="4000"):
        await client.send(_job("tok", message=message), CREDS)
    assert state.auth_requests == [] and state.batches == []


async def test_a_data_message_is_refused_before_sending(client, state):
    with pytest.raises(RejectedError, match="pass-through"):
        await client.send(_job("tok", message=Message(kind="data", data={"k": 1})), CREDS)
    assert state.auth_requests == [] and state.batches == []


async def test_a_wrong_master_secret_is_an_auth_error_that_does_not_show_it(client, state):
    with pytest.raises(AuthError, match="code 16") as err:
        await client.send(_job("tok"), {"app_key": APP_KEY, "master_secret": "wrong-secret"})
    assert "wrong-secret" not in str(err.value) and state.batches == []


async def test_a_timestamp_off_by_more_than_ten_minutes_is_refused(server):
    client = OppoClient(base_url=server[1].url, verify=server[1].verify, clock=Clock(T0 + 601))
    with pytest.raises(AuthError, match="code 19"):
        await client.send(_job("tok"), CREDS)
    await client.close()


def test_credentials_name_what_is_missing_and_hide_the_secret():
    with pytest.raises(ValueError, match="'app_key'"):
        Credentials.from_mapping({})
    with pytest.raises(ValueError, match="'master_secret'"):
        Credentials.from_mapping({"app_key": "k", "master_secret": "  "})
    creds = Credentials.from_mapping(CREDS)
    assert creds.app_key == APP_KEY and MASTER_SECRET not in repr(creds)


async def test_missing_credentials_are_an_auth_error_before_sending(client, state):
    with pytest.raises(AuthError, match="'master_secret'"):
        await client.send(_job("tok"), {"app_key": APP_KEY})
    assert state.auth_requests == []


def test_build_payload_maps_every_field_and_drops_what_oppo_cannot_carry():
    message = Message(title="Hi", body="There", data={"a": "b", "n": 1.5, "f": None}, badge=3,
                      sound="ding", click=ClickAction(type="deeplink", target="app://x"),
                      small_icon="ic", large_icon="https://i.example/l.png",
                      image="https://i.example/i.png", category="IM", channel_id="chat",
                      collapse_id="c1", priority="normal", push_type="alert")
    (entry,) = build_payload(message, ["tok"], msg_id="m9", ttl_s=None)
    assert entry == {"target_type": 2, "target_value": "tok", "notification": {
        "app_message_id": "m9", "style": 1, "title": "Hi", "content": "There",
        "click_action_type": 5, "click_action_url": "app://x", "off_line": True,
        "action_parameters": '{"a":"b","n":1.5,"f":null}', "channel_id": "chat",
        "category": "IM", "notify_level": 2, "notify_id": notify_id("c1")}}


@pytest.mark.parametrize(("click", "action_type"), [
    (ClickAction(), 0), (ClickAction(type="url", target="https://x"), 2),
    (ClickAction(type="intent", target="intent://x#Intent;end"), 5)])
def test_build_payload_maps_click_actions(click, action_type):
    (entry,) = build_payload(Message(title="t", click=click), ["tok"], msg_id="m", ttl_s=None)
    notification = entry["notification"]
    assert notification["click_action_type"] == action_type
    assert notification.get("click_action_url", "") == click.target


def test_build_payload_cuts_long_texts_and_fills_a_missing_one():
    (entry,) = build_payload(Message(title="T" * 60), ["tok"], msg_id="m", ttl_s=None)
    assert entry["notification"]["title"] == "T" * 49 + "…"
    assert entry["notification"]["content"] == "T" * 60
    (entry,) = build_payload(Message(body="B" * 300), ["tok"], msg_id="m", ttl_s=None)
    assert entry["notification"]["title"] == "B" * 49 + "…"
    assert entry["notification"]["content"] == "B" * 199 + "…"


def test_build_payload_without_category_sends_no_notify_level_and_caps_the_ttl():
    (entry,) = build_payload(Message(title="t", priority="high"), ["tok"], msg_id="m",
                             ttl_s=30 * 24 * 3600)
    notification = entry["notification"]
    assert "category" not in notification and "notify_level" not in notification
    assert notification["off_line_ttl"] == 10 * 24 * 3600


def test_shared_helpers():
    assert seconds_left(0, T0) is None
    assert seconds_left(int((T0 + 90.4) * 1000), T0) == 90
    assert seconds_left(int((T0 - 5) * 1000), T0) == 0
    assert until_midnight(T0) == 17 * 3600 + 46 * 60 + 40
    assert notify_id("c1") == notify_id("c1") > 0 and notify_id("c1") != notify_id("c2")
