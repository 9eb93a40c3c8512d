"""The vivo push client against the fake vivo server, and its payload mapping."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from proto.envelopes import VendorJob, VendorTarget
from proto.message import ClickAction, Message
from tests.vendors.helpers import Clock, job_factory
from tests.vendors.servers.base import serve
from tests.vendors.servers.vivo import fake_vivo
from vendors.client import TargetResult
from vendors.errors import (
    AuthError,
    PayloadTooLargeError,
    RateLimitedError,
    RejectedError,
    TransientError,
)
from vendors.vivo import (
    Credentials,
    VivoClient,
    build_payload,
    notify_id,
    push_to_list_body,
    request_id,
)

APP_ID, APP_KEY, APP_SECRET = 10004, "vivo-app-key", "vivo-app-secret"
CREDS = {"app_id": str(APP_ID), "app_key": APP_KEY, "app_secret": APP_SECRET}
SEND, SAVE, PUSH = "/message/send", "/message/saveListPayload", "/message/pushToList"
#: 2023-11-15 06:13:20 in China: 17 h 46 min 40 s before midnight there.
T0 = 1_700_000_000.0
UNTIL_MIDNIGHT = 17 * 3600 + 46 * 60 + 40


_job = job_factory(message=Message(title="Hello", body="World"))


def _payload(message: Message, tokens: list[str], ttl: int | None = None) -> dict:
    return build_payload(message, tokens, app_id=str(APP_ID), msg_id="m1", ttl_s=ttl)


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
async def server(clock):
    app, state = fake_vivo(APP_ID, APP_KEY, APP_SECRET, clock)
    async with serve(app, tls=True) as served:
        yield state, served


@pytest.fixture
def state(server):
    return server[0]


@pytest.fixture
async def client(server, clock):
    client = VivoClient(base_url=server[1].url, verify=server[1].verify, clock=clock)
    yield client
    await client.close()


MESSAGE = Message(title="Order shipped", body="Your parcel is on its way", data={"order": 42},
                  click=ClickAction(type="url", target="https://s.example/42"), sound="default",
                  category="ORDER", collapse_id="order-42")
BODY = {"appId": APP_ID, "notifyType": 4, "title": "Order shipped",
        "content": "Your parcel is on its way", "skipType": 2, "networkType": -1,
        "category": "ORDER", "classification": 1, "pushMode": 0,
        "skipContent": "https://s.example/42", "clientCustomMap": {"order": "42"},
        "notifyId": notify_id("order-42"), "timeToLive": 3600}


async def test_one_target_goes_to_send_with_a_signed_auth_and_the_exact_body(client, state):
    job = _job("reg-a", message=MESSAGE, expires_at_ms=int((T0 + 3600) * 1000))
    assert await client.send(job, CREDS) == [TargetResult("rid-reg-a")]

    timestamp = int(T0 * 1000)
    signature = hashlib.md5(f"{APP_ID}{APP_KEY}{timestamp}{APP_SECRET}".encode()).hexdigest()
    assert state.auth_requests == [{"appId": APP_ID, "appKey": APP_KEY, "timestamp": timestamp,
                                    "sign": signature}]
    (call,) = state.calls
    (token,) = state.tokens
    assert call.path == SEND and call.headers["authtoken"] == token
    assert call.headers["content-type"] == "application/json"
    assert call.body == {**BODY, "regId": "reg-a",
                         "requestId": request_id("send", "m1", ["reg-a"])}


async def test_more_targets_save_the_payload_then_push_to_the_list(client, state):
    tokens = ["reg-a", "reg-b", "reg-c"]
    job = _job(*tokens, message=MESSAGE, expires_at_ms=int((T0 + 3600) * 1000))
    assert await client.send(job, CREDS) == [TargetResult(f"rid-{t}") for t in tokens]

    save, push = state.calls
    (task_id,) = state.payloads
    assert (save.path, push.path) == (SAVE, PUSH)
    assert save.body == {**BODY, "requestId": request_id("payload", "m1", tokens)}
    assert push.body == {"appId": APP_ID, "regIds": tokens, "taskId": task_id,
                         "requestId": request_id("list", "m1", tokens), "pushMode": 0}
    assert push.headers["authtoken"] == save.headers["authtoken"]


async def test_devices_sharing_a_token_are_sent_once(client, state):
    job = VendorJob(app_id="app", task_id="t1", msg_id="m1", message=Message(title="t"),
                    targets=[VendorTarget("rid-1", "reg-a"), VendorTarget("rid-2", "reg-a")])
    assert await client.send(job, CREDS) == [TargetResult("rid-1"), TargetResult("rid-2")]
    assert state.paths() == [SEND] and state.calls[0].body["regId"] == "reg-a"


async def test_invalid_users_of_a_list_push_fail_alone(client, state):
    state.invalid_users = {"reg-b": 1, "reg-c": 2, "reg-d": 4}
    results = await client.send(_job("reg-a", "reg-b", "reg-c", "reg-d"), CREDS)
    assert results == [
        TargetResult("rid-reg-a"),
        TargetResult("rid-reg-b", error="invalid user, status 1", token_invalid=True),
        TargetResult("rid-reg-c", error="invalid user, status 2", token_invalid=True),
        TargetResult("rid-reg-d", error="invalid user, status 4")]


async def test_an_invalid_user_of_a_single_send_is_reported(client, state):
    state.invalid_users = {"reg-a": 3}
    assert await client.send(_job("reg-a"), CREDS) == [
        TargetResult("rid-reg-a", error="invalid user, status 3", token_invalid=True)]


async def test_a_malformed_reg_id_of_a_single_send_is_invalid(client, state):
    assert await client.send(_job("bad id!"), CREDS) == [
        TargetResult("rid-bad id!", error="10302 regId不合法", token_invalid=True)]


async def test_http_429_carries_retry_after(client, state):
    await client.send(_job("warm"), CREDS)
    state.statuses, state.retry_after = [429], "7"
    with pytest.raises(RateLimitedError) as err:
        await client.send(_job("reg-a"), CREDS)
    assert err.value.retriable and err.value.retry_after_s == 7


@pytest.mark.parametrize(("result", "tokens"), [(10070, ["reg-a"]), (10073, ["reg-a"]),
                                                (10252, ["reg-a", "reg-b"])])
async def test_daily_limits_wait_for_midnight_in_china(client, state, result, tokens):
    state.results = [result]
    with pytest.raises(RateLimitedError, match=str(result)) as err:
        await client.send(_job(*tokens), CREDS)
    assert err.value.retry_after_s == UNTIL_MIDNIGHT


@pytest.mark.parametrize(("result", "error", "retriable"), [
    (10071, RateLimitedError, True), (10072, RateLimitedError, True),
    (10055, RejectedError, False), (10302, RejectedError, False)])
async def test_list_push_results_map_to_errors(client, state, result, error, retriable):
    state.results = [0, result]
    with pytest.raises(error) as err:
        await client.send(_job("reg-a", "reg-b"), CREDS)
    assert type(err.value) is error and err.value.retriable is retriable
    assert err.value.retry_after_s is None and f"vivo result {result}" in err.value.reason
    assert state.paths() == [SAVE, PUSH]


@pytest.mark.parametrize(("status", "error"), [(500, TransientError), (503, TransientError),
                                               (400, RejectedError), (405, RejectedError)])
async def test_http_statuses_map_to_errors(client, state, status, error):
    await client.send(_job("warm"), CREDS)
    state.statuses = [status]
    with pytest.raises(error, match=str(status)):
        await client.send(_job("reg-a"), CREDS)


async def test_a_refused_token_is_refreshed_once(client, state):
    await client.send(_job("warm"), CREDS)
    state.expire_before = {SEND}
    assert await client.send(_job("reg-a"), CREDS) == [TargetResult("rid-reg-a")]
    assert len(state.auth_requests) == 2
    warm, refused, retried = (c.headers["authtoken"] for c in state.calls)
    assert refused == warm != retried


async def test_a_token_refused_between_save_and_push_is_refreshed(client, state):
    state.expire_before = {PUSH}
    results = await client.send(_job("reg-a", "reg-b"), CREDS)
    assert results == [TargetResult("rid-reg-a"), TargetResult("rid-reg-b")]
    assert state.paths() == [SAVE, PUSH, PUSH] and len(state.auth_requests) == 2
    _, refused, retried = state.calls
    assert refused.body == retried.body
    assert refused.headers["authtoken"] != retried.headers["authtoken"]


async def test_a_second_refusal_is_an_auth_error(client, state):
    state.refuse_tokens = True
    with pytest.raises(AuthError, match="10000") as err:
        await client.send(_job("reg-a"), CREDS)
    assert not err.value.retriable
    assert len(state.auth_requests) == 2 and state.paths() == [SEND, SEND]


async def test_token_is_reused_until_shortly_before_it_expires(client, state, clock):
    await client.send(_job("reg-a"), CREDS)
    await client.send(_job("reg-a", "reg-b"), CREDS)
    clock.now = T0 + 24 * 3600 - 61
    await client.send(_job("reg-a"), CREDS)
    assert len(state.auth_requests) == 1
    clock.now = T0 + 24 * 3600 - 59
    await client.send(_job("reg-a"), CREDS)
    assert len(state.auth_requests) == 2
    tokens = [c.headers["authtoken"] for c in state.calls]
    assert tokens[0] == tokens[1] == tokens[2] == tokens[3] != tokens[4]


async def test_concurrent_sends_of_an_app_make_one_auth_request(client, state):
    await asyncio.gather(*(client.send(_job(f"reg-{i}"), CREDS) for i in range(5)))
    assert len(state.auth_requests) == 1 and len(state.calls) == 5


@pytest.mark.parametrize("data", [{f"k{i}": i for i in range(11)}, {"blob": "x" * 1021}])
async def test_data_too_large_for_the_custom_map_are_refused_before_sending(client, state,
                                                                            data):
    with pytest.raises(PayloadTooLargeError, match="vivo carries"):
        await client.send(_job("reg-a", message=Message(title="t", data=data)), CREDS)
    assert state.auth_requests == [] and state.calls == []


async def test_a_data_message_is_refused_before_sending(client, state):
    with pytest.raises(RejectedError, match="pass-through"):
        await client.send(_job("reg-a", message=Message(kind="data", data={"k": 1})), CREDS)
    assert state.auth_requests == [] and state.calls == []


async def test_a_wrong_app_secret_is_an_auth_error_that_does_not_show_it(client, state):
    with pytest.raises(AuthError, match="10200") as err:
        await client.send(_job("reg-a"), {**CREDS, "app_secret": "wrong-secret"})
    assert "wrong-secret" not in str(err.value) and state.calls == []


async def test_a_timestamp_off_by_more_than_ten_minutes_is_refused(server):
    client = VivoClient(base_url=server[1].url, verify=server[1].verify, clock=Clock(T0 - 601))
    with pytest.raises(AuthError, match="timestamp"):
        await client.send(_job("reg-a"), CREDS)
    await client.close()


def test_credentials_name_what_is_wrong_and_hide_the_secret():
    with pytest.raises(ValueError, match="'app_secret'"):
        Credentials.from_mapping({"app_id": "1", "app_key": "k"})
    with pytest.raises(ValueError, match="'app_id' must be digits"):
        Credentials.from_mapping({**CREDS, "app_id": "abc"})
    creds = Credentials.from_mapping(CREDS)
    assert creds.app_id == str(APP_ID) and APP_SECRET not in repr(creds)


async def test_bad_credentials_are_an_auth_error_before_sending(client, state):
    with pytest.raises(AuthError, match="'app_key'"):
        await client.send(_job("reg-a"), {"app_id": "1", "app_secret": "s"})
    assert state.auth_requests == []


def test_build_payload_maps_every_field_and_drops_what_vivo_cannot_carry():
    message = Message(title="Hi", body="There",
                      data={"s": "b", "n": 1, "f": 1.5, "t": True, "z": None}, badge=3,
                      sound="ding", click=ClickAction(type="deeplink", target="app://x"),
                      small_icon="ic", large_icon="https://i.example/l.png",
                      image="https://i.example/i.png", category="IM", channel_id="chat",
                      collapse_id="c1", priority="normal", push_type="alert")
    assert _payload(message, ["reg-a"], ttl=7200) == {
        "appId": APP_ID, "regId": "reg-a", "notifyType": 4, "title": "Hi", "content": "There",
        "skipType": 4, "skipContent": "app://x", "networkType": -1, "category": "IM",
        "classification": 1, "pushMode": 0, "notifyId": notify_id("c1"), "timeToLive": 7200,
        "clientCustomMap": {"s": "b", "n": "1", "f": "1.5", "t": "true", "z": "null"},
        "requestId": request_id("send", "m1", ["reg-a"])}


@pytest.mark.parametrize(("category", "priority", "expected"), [
    ("IM", "normal", {"category": "IM", "classification": 1}),
    ("MARKETING", "high", {"category": "MARKETING", "classification": 0}),
    ("1", "normal", {"classification": 1}), ("0", "high", {"classification": 0}),
    ("", "high", {"classification": 1}), ("", "normal", {"classification": 0}),
    ("VOIP", "normal", {"category": "IM", "classification": 1}),
    ("WORK", "high", {"classification": 1})])
def test_build_payload_classifies_by_category_then_priority(category, priority, expected):
    body = _payload(Message(title="t", category=category, priority=priority), ["a", "b"])
    assert {k: body[k] for k in ("category", "classification") if k in body} == expected


@pytest.mark.parametrize(("click", "skip_type"), [
    (ClickAction(), 1), (ClickAction(type="url", target="https://x"), 2),
    (ClickAction(type="intent", target="intent://x#Intent;end"), 4)])
def test_build_payload_maps_click_actions(click, skip_type):
    body = _payload(Message(title="t", click=click), ["a"])
    assert (body["skipType"], body.get("skipContent", "")) == (skip_type, click.target)


def test_build_payload_cuts_texts_fills_a_missing_one_and_bounds_the_ttl():
    body = _payload(Message(body="B" * 120), ["a", "b"], ttl=5)
    assert body["title"] == "B" * 39 + "…" and body["content"] == "B" * 99 + "…"
    assert body["notifyType"] == 1 and body["timeToLive"] == 60 and "regId" not in body
    assert _payload(Message(title="t"), ["a"], ttl=3 * 24 * 3600)["timeToLive"] == 24 * 3600
    assert "timeToLive" not in _payload(Message(title="t"), ["a"])


def test_request_ids_are_unique_per_target_and_fit_vivo():
    long_msg_id = "m" * 64
    ids = {request_id("send", long_msg_id, [token]) for token in ("a", "b")}
    ids |= {request_id("payload", long_msg_id, ["a", "b"]), request_id("list", long_msg_id,
                                                                       ["a", "b"])}
    assert len(ids) == 4 and all(len(i) <= 64 for i in ids)
    assert request_id("send", "m1", ["a"]) == request_id("send", "m1", ["a"])
    body = push_to_list_body(["a", "b"], app_id="7", msg_id="m1", task_id="task")
    assert body == {"appId": 7, "regIds": ["a", "b"], "taskId": "task",
                    "requestId": request_id("list", "m1", ["a", "b"]), "pushMode": 0}
