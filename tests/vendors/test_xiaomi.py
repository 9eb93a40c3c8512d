"""The MiPush client against the fake MiPush server, and the Message -> form mapping."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import msgspec
import pytest

from proto.message import ClickAction, Message
from tests.vendors.helpers import Clock, job_factory, outcomes
from tests.vendors.servers.base import serve
from tests.vendors.servers.xiaomi import Answer, make_app
from vendors.errors import (
    AuthError,
    PayloadTooLargeError,
    RateLimitedError,
    RejectedError,
    TransientError,
)
from vendors.xiaomi import (
    MAX_PAYLOAD_BYTES,
    Credentials,
    XiaomiClient,
    build_payload,
    notify_id,
)

SECRET = "xm-app-secret-0001"
PACKAGE = "com.example.chat"
CREDS = {"app_secret": SECRET, "package_name": PACKAGE}
NOW = 1_780_000_000.0
CHINA = timezone(timedelta(hours=8))


@pytest.fixture
async def mipush():
    app, state = make_app(SECRET, PACKAGE)
    async with serve(app, tls=True) as served:
        yield served, state


@pytest.fixture
def clock():
    return Clock(NOW)


@pytest.fixture
async def client(mipush, clock):
    served, _ = mipush
    client = XiaomiClient(base_url=served.url, verify=served.verify, timeout_s=5, clock=clock)
    yield client
    await client.close()


@pytest.fixture
def state(mipush):
    return mipush[1]


#: Jobs for targets ``rid-<token>``; test_meizu uses them too.
job = job_factory(msg_id="m-1", message=Message(title="hi", body="there"))


async def test_notification_carries_secret_header_and_mapped_form(client, state):
    message = Message(title="Anna", body="Are you coming?", data={"chat": 42},
                      click=ClickAction(type="url", target="https://example.com/c/42"),
                      collapse_id="42", category="im_channel", sound="ring")
    results = await client.send(job("a", "b", message=message,
                                     expires_at_ms=int(NOW * 1000) + 3_600_000), CREDS)
    assert outcomes(results) == [("rid-a", "", False), ("rid-b", "", False)]
    (request,) = state.requests
    assert request.headers["authorization"] == f"key={SECRET}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form == {
        "registration_id": "a,b", "restricted_package_name": PACKAGE,
        "payload": '{"chat":42}', "time_to_live": "3600000", "pass_through": "0",
        "notify_type": "-1", "title": "Anna", "description": "Are you coming?",
        "notify_id": "42", "extra.notify_effect": "3",
        "extra.web_uri": "https://example.com/c/42", "extra.channel_id": "im_channel",
        "extra.sound_uri": f"android.resource://{PACKAGE}/raw/ring"}


async def test_bad_regids_of_a_batch_are_invalid_and_the_rest_sent(client, state):
    state.invalid_tokens = {"b", "d"}
    results = await client.send(job("a", "b", "c", "d"), CREDS)
    assert outcomes(results) == [("rid-a", "", False), ("rid-b", "invalid regid", True),
                                  ("rid-c", "", False), ("rid-d", "invalid regid", True)]


async def test_a_request_without_any_valid_regid_invalidates_every_target(client, state):
    state.invalid_tokens = {"a", "b"}
    results = await client.send(job("a", "b"), CREDS)
    assert outcomes(results) == [("rid-a", "20301 invalid regid", True),
                                  ("rid-b", "20301 invalid regid", True)]


async def test_http_429_is_rate_limited_with_retry_after(client, state):
    state.answers = [Answer(status=429, headers={"retry-after": "7"})]
    with pytest.raises(RateLimitedError) as err:
        await client.send(job("a"), CREDS)
    assert err.value.retriable and err.value.retry_after_s == 7


async def test_call_frequency_code_is_rate_limited(client, state):
    state.answers = [Answer(code=10027, headers={"retry-after": "3"})]
    with pytest.raises(RateLimitedError, match="10027") as err:
        await client.send(job("a"), CREDS)
    assert err.value.retry_after_s == 3


async def test_daily_quota_waits_until_midnight_china_time(client, state, clock):
    clock.now = datetime(2026, 3, 1, 22, 30, tzinfo=CHINA).timestamp()
    state.answers = [Answer(code=200001)]
    with pytest.raises(RateLimitedError, match="200001") as err:
        await client.send(job("a"), CREDS)
    assert err.value.retry_after_s == 5400


@pytest.mark.parametrize("answer", [Answer(status=500), Answer(status=503), Answer(code=10009),
                                    Answer(code=10002)])
async def test_server_trouble_is_transient(client, state, answer):
    state.answers = [answer]
    with pytest.raises(TransientError) as err:
        await client.send(job("a"), CREDS)
    assert err.value.retriable


async def test_refused_secret_is_an_auth_error_at_once(client, state):
    with pytest.raises(AuthError, match="21301") as err:
        await client.send(job("a"), {**CREDS, "app_secret": "stale-secret"})
    assert not err.value.retriable
    assert len(state.requests) == 1, "a static secret has nothing to refresh: no retry"
    assert "stale-secret" not in str(err.value)


async def test_foreign_package_is_an_auth_error(client):
    with pytest.raises(AuthError, match="22022"):
        await client.send(job("a"), {**CREDS, "package_name": "com.other"})


async def test_other_codes_reject_the_request(client, state):
    state.answers = [Answer(code=10017)]
    with pytest.raises(RejectedError, match="MiPush code 10017") as err:
        await client.send(job("a"), CREDS)
    assert not err.value.retriable


async def test_ttl_follows_the_injected_clock(client, state, clock):
    pending = job("a", expires_at_ms=int(NOW * 1000) + 600_000)
    await client.send(pending, CREDS)
    clock.now += 299.6
    await client.send(pending, CREDS)
    clock.now += 300
    assert outcomes(await client.send(pending, CREDS)) == [("rid-a", "expired", False)]
    assert [r.form["time_to_live"] for r in state.requests] == ["600000", "300000"]


async def test_expired_job_is_not_sent(client, state, clock):
    clock.now += 10
    results = await client.send(job("a", "b", expires_at_ms=int(NOW * 1000)), CREDS)
    assert outcomes(results) == [("rid-a", "expired", False), ("rid-b", "expired", False)]
    assert state.requests == []


async def test_oversized_payload_is_refused_before_sending(client, state):
    # Herald's own data limit equals MiPush's, so only a message built around validation
    # exceeds it; the guard stands for the day proto limits grow.
    message = Message(kind="data", data={"k": "v"})
    msgspec.structs.force_setattr(message, "data", {"k": "x" * MAX_PAYLOAD_BYTES})
    with pytest.raises(PayloadTooLargeError, match="MiPush takes 4096"):
        await client.send(job("a", message=message), CREDS)
    assert state.requests == []


def test_credentials_name_what_is_missing_and_hide_the_secret():
    with pytest.raises(ValueError, match="lack 'app_secret'"):
        Credentials.from_mapping({})
    with pytest.raises(ValueError, match="lack 'package_name'"):
        Credentials.from_mapping({"app_secret": SECRET})
    creds = Credentials.from_mapping(CREDS)
    assert SECRET not in repr(creds) and PACKAGE in repr(creds)


async def test_missing_credentials_fail_as_auth_error_without_sending(client, state):
    with pytest.raises(AuthError, match="lack 'app_secret'"):
        await client.send(job("a"), {"package_name": PACKAGE})
    assert state.requests == []


def _form(message: Message, **kwargs) -> dict[str, str]:
    return build_payload(message, ["t1"], package_name=PACKAGE, msg_id="m-1", **kwargs)


def test_pass_through_carries_data_only():
    message = Message(kind="data", title="dropped", body="dropped", data={"a": 1, "b": "x"},
                      click=ClickAction(type="url", target="https://x"), collapse_id="c",
                      sound="ring", category="im", badge=3, priority="high")
    assert _form(message, ttl_ms=5000) == {
        "registration_id": "t1", "restricted_package_name": PACKAGE,
        "payload": '{"a":1,"b":"x"}', "time_to_live": "5000", "pass_through": "1"}


@pytest.mark.parametrize(("click", "extra"), [
    (ClickAction(), {"extra.notify_effect": "1"}),
    (ClickAction(type="intent", target="intent:#Intent;component=a/.B;end"),
     {"extra.notify_effect": "2", "extra.intent_uri": "intent:#Intent;component=a/.B;end"}),
    (ClickAction(type="deeplink", target="chat://room/1"),
     {"extra.notify_effect": "2", "extra.intent_uri": "chat://room/1"}),
    (ClickAction(type="url", target="https://e.com"),
     {"extra.notify_effect": "3", "extra.web_uri": "https://e.com"}),
])
def test_click_maps_to_notify_effect(click, extra):
    form = _form(Message(title="t", click=click))
    assert {k: v for k, v in form.items() if k.startswith("extra.")} == extra


def test_text_is_cut_to_mipush_lengths_and_a_missing_half_repeats_the_other():
    form = _form(Message(title="T" * 80, body="B" * 300))
    assert form["title"] == "T" * 48 + "…" and len(form["title"]) == 49
    assert form["description"] == "B" * 126 + "…"
    assert _form(Message(body="only body"))["title"] == "only body"
    assert _form(Message(title="only title"))["description"] == "only title"


def test_minimal_notification_and_drop_rules():
    base = Message(title="t", body="b")
    dropped = Message(title="t", body="b", badge=5, small_icon="ic", image="https://i/p.png",
                      large_icon="https://i/l.png", priority="high", push_type="voip")
    expected = {"registration_id": "t1", "restricted_package_name": PACKAGE,
                "pass_through": "0", "notify_type": "-1", "title": "t", "description": "b",
                "notify_id": str(notify_id("m-1")), "extra.notify_effect": "1"}
    assert _form(base) == expected
    assert _form(dropped) == expected
    assert _form(Message(title="t", badge_add=1)) == {**expected, "description": "t"}


@pytest.mark.parametrize(("sound", "uri"), [
    ("", None), ("default", None), ("ring", f"android.resource://{PACKAGE}/raw/ring"),
    ("android.resource://com.x/raw/bell", "android.resource://com.x/raw/bell")])
def test_sound(sound, uri):
    assert _form(Message(title="t", sound=sound)).get("extra.sound_uri") == uri


def test_channel_prefers_the_category():
    assert _form(Message(title="t", channel_id="android"))["extra.channel_id"] == "android"
    assert _form(Message(title="t", category="im", channel_id="android"))[
        "extra.channel_id"] == "im"


def test_notify_id_rules():
    assert notify_id("17") == 17
    assert notify_id("2147483648") == notify_id("2147483648") < 2**31
    assert notify_id("2147483648") != 2147483648
    assert 0 <= notify_id("thread-9") < 2**31
    assert notify_id("thread-9") != notify_id("thread-10")
    assert _form(Message(title="t", collapse_id="thread-9"))["notify_id"] == str(
        notify_id("thread-9"))


_GOOD_FORM = {"registration_id": "a", "restricted_package_name": PACKAGE, "pass_through": "0",
              "notify_type": "-1", "title": "t", "description": "d", "notify_id": "1",
              "extra.notify_effect": "1"}


@pytest.mark.parametrize(("change", "code"), [
    ({}, 0),
    ({"registration_id": ",".join(f"r{i}" for i in range(1001))}, 10017),
    ({"registration_id": "a,,b"}, 10017),
    ({"title": "x" * 50}, 10017),
    ({"description": "x" * 128}, 10017),
    ({"extra.notify_effect": "2"}, 10017),
    ({"extra.notify_effect": ""}, 10016),
    ({"notify_id": "n1"}, 10017),
    ({"restricted_package_name": "com.other"}, 22022),
    ({"payload": "x" * 4097}, 10018)])
async def test_fake_mipush_refuses_what_mipush_refuses(mipush, change, code):
    served, _ = mipush
    async with httpx.AsyncClient(verify=served.verify) as http:
        response = await http.post(f"{served.url}/v3/message/regid", data=_GOOD_FORM | change,
                                   headers={"authorization": f"key={SECRET}"})
    assert response.json()["code"] == code


async def test_fake_mipush_wants_a_form(mipush):
    served, _ = mipush
    async with httpx.AsyncClient(verify=served.verify) as http:
        response = await http.post(f"{served.url}/v3/message/regid", json=_GOOD_FORM,
                                   headers={"authorization": f"key={SECRET}"})
    assert response.json()["code"] == 10007
