"""The Flyme push client against the fake Flyme server, and the Message -> messageJson mapping."""

from __future__ import annotations

import json

import httpx
import pytest

from proto.message import ClickAction, Message
from tests.vendors.helpers import Clock, outcomes
from tests.vendors.servers.base import serve
from tests.vendors.servers.meizu import Answer, expected_sign, make_app
from tests.vendors.test_xiaomi import NOW, job
from vendors.errors import (
    AuthError,
    PayloadTooLargeError,
    RateLimitedError,
    RejectedError,
    TransientError,
)
from vendors.meizu import (
    DATA_PATH,
    NOTIFY_PATH,
    Credentials,
    MeizuClient,
    build_payload,
    notify_key,
    sign,
    valid_hours,
)

APP_ID = "100999"
SECRET = "mz-app-secret-0001"
CREDS = {"app_id": APP_ID, "app_secret": SECRET}


@pytest.fixture
async def flyme():
    app, state = make_app(APP_ID, SECRET)
    async with serve(app) as served:
        yield served, state


@pytest.fixture
def clock():
    return Clock(NOW)


@pytest.fixture
async def client(flyme, clock):
    served, _ = flyme
    client = MeizuClient(base_url=served.url, verify=served.verify, timeout_s=5, clock=clock)
    yield client
    await client.close()


@pytest.fixture
def state(flyme):
    return flyme[1]


async def test_notification_is_signed_and_mapped(client, state):
    message = Message(title="Anna", body="Are you coming?", data={"chat": 42},
                      click=ClickAction(type="url", target="https://example.com/c/42"),
                      collapse_id="c42")
    results = await client.send(job("A1", "A2", message=message,
                                     expires_at_ms=int(NOW * 1000) + 5 * 3600_000), CREDS)
    assert outcomes(results) == [("rid-A1", "", False), ("rid-A2", "", False)]
    (request,) = state.requests
    assert request.path == NOTIFY_PATH
    assert request.headers["content-type"] == "application/x-www-form-urlencoded;charset=UTF-8"
    assert set(request.form) == {"appId", "pushIds", "messageJson", "sign"}
    assert (request.form["appId"], request.form["pushIds"]) == (APP_ID, "A1,A2")
    assert request.form["sign"] == expected_sign(request.form, SECRET)
    assert request.message == {
        "noticeBarInfo": {"noticeBarType": 0, "title": "Anna", "content": "Are you coming?"},
        "clickTypeInfo": {"clickType": 2, "url": "https://example.com/c/42",
                          "parameters": {"chat": 42}},
        "pushTimeInfo": {"offLine": 1, "validTime": 5},
        "advanceInfo": {"notifyKey": "c42"}}


async def test_pass_through_goes_to_the_unvarnished_endpoint(client, state):
    message = Message(kind="data", title="sync", data={"since": 7})
    results = await client.send(job("A1", message=message), CREDS)
    assert outcomes(results) == [("rid-A1", "", False)]
    (request,) = state.requests
    assert request.path == DATA_PATH
    assert request.message == {"content": '{"since":7}', "title": "sync",
                               "pushTimeInfo": {"offLine": 1, "validTime": 24}}


async def test_per_target_failures_of_a_batch(client, state):
    state.token_codes = {"A2": "110003", "A3": "110002", "A4": "513", "A5": "110010"}
    results = await client.send(job("A1", "A2", "A3", "A4", "A5"), CREDS)
    assert outcomes(results) == [
        ("rid-A1", "", False), ("rid-A2", "110003 illegal pushId", True),
        ("rid-A3", "110002 pushId unsubscribed or switched off", True),
        ("rid-A4", "513 push failed", False), ("rid-A5", "110010 pushId switched off", False)]


@pytest.mark.parametrize(("answer", "wait"), [
    (Answer(code="110010", headers={"retry-after": "5"}), 5),
    (Answer(code="110019"), None),
    (Answer(status=429, headers={"retry-after": "9"}), 9)])
async def test_rate_limits(client, state, answer, wait):
    state.answers = [answer]
    with pytest.raises(RateLimitedError) as err:
        await client.send(job("A1"), CREDS)
    assert err.value.retriable and err.value.retry_after_s == wait


@pytest.mark.parametrize("answer", [Answer(status=502), Answer(code="1003"),
                                    Answer(code="1001")])
async def test_server_trouble_is_transient(client, state, answer):
    state.answers = [answer]
    with pytest.raises(TransientError):
        await client.send(job("A1"), CREDS)


async def test_refused_signature_is_an_auth_error_at_once(client, state):
    with pytest.raises(AuthError, match="1006") as err:
        await client.send(job("A1"), {**CREDS, "app_secret": "rotated-secret"})
    assert not err.value.retriable
    assert len(state.requests) == 1, "a signature has nothing to refresh: no retry"
    assert "rotated-secret" not in str(err.value)


async def test_unknown_app_is_an_auth_error(client):
    with pytest.raises(AuthError, match="110000"):
        await client.send(job("A1"), {**CREDS, "app_id": "7"})


async def test_other_codes_reject_the_request(client, state):
    state.answers = [Answer(code="1005")]
    with pytest.raises(RejectedError, match="Flyme code 1005"):
        await client.send(job("A1"), CREDS)


async def test_validity_follows_the_injected_clock(client, state, clock):
    pending = job("A1", expires_at_ms=int(NOW * 1000) + 100 * 3600_000)
    await client.send(pending, CREDS)
    clock.now += 99 * 3600
    await client.send(pending, CREDS)
    clock.now += 3600
    assert outcomes(await client.send(pending, CREDS)) == [("rid-A1", "expired", False)]
    assert [r.message["pushTimeInfo"]["validTime"] for r in state.requests] == [72, 1]


async def test_oversized_pass_through_is_refused_before_sending(client, state):
    message = Message(kind="data", data={"blob": "x" * 2000})
    with pytest.raises(PayloadTooLargeError, match="Flyme takes 2000"):
        await client.send(job("A1", message=message), CREDS)
    assert state.requests == []


async def test_missing_credentials_fail_as_auth_error_without_sending(client, state):
    with pytest.raises(AuthError, match="lack 'app_secret'"):
        await client.send(job("A1"), {"app_id": APP_ID})
    assert state.requests == []


def test_credentials_name_the_bad_field_and_hide_the_secret():
    with pytest.raises(ValueError, match="lack 'app_id'"):
        Credentials.from_mapping({})
    with pytest.raises(ValueError, match="app_id must be the numeric appId"):
        Credentials.from_mapping({"app_id": "x1", "app_secret": SECRET})
    creds = Credentials.from_mapping(CREDS)
    assert SECRET not in repr(creds) and APP_ID in repr(creds)


def test_sign_matches_the_worked_example_of_the_flyme_docs():
    fields = {"appId": "10000", "pushIds": "RA50c6348036344485d01776773577c64740465480a6b",
              "messageJson": '{"title":"title","content":"content",'
                             '"pushTimeInfo":{"offLine":1,"validTime":24}}'}
    assert sign(fields, "<APP_SECRET>") == "ac076ff25d9900015a681cb5172aa53b"
    assert sign({**fields, "sign": "ignored"}, "<APP_SECRET>") == sign(fields, "<APP_SECRET>")


def _message_json(message: Message, **kwargs) -> dict:
    return json.loads(build_payload(message, ["A1"], app_id=APP_ID, **kwargs)["messageJson"])


@pytest.mark.parametrize(("click", "info"), [
    (ClickAction(), {"clickType": 0}),
    (ClickAction(type="intent", target="com.example.ChatActivity"),
     {"clickType": 1, "activity": "com.example.ChatActivity"}),
    (ClickAction(type="deeplink", target="chat://room/1"), {"clickType": 2, "url": "chat://room/1"}),
    (ClickAction(type="url", target="https://e.com"), {"clickType": 2, "url": "https://e.com"}),
])
def test_click_maps_to_click_type(click, info):
    assert _message_json(Message(title="t", click=click))["clickTypeInfo"] == info


def test_click_target_over_1000_bytes_is_too_large():
    with pytest.raises(PayloadTooLargeError, match="1000 bytes"):
        build_payload(Message(title="t", click=ClickAction(type="url", target="u" * 1001)),
                      ["A1"], app_id=APP_ID)


def test_long_text_is_cut_and_a_long_body_also_sent_as_expandable_text():
    body = "B" * 300
    message = _message_json(Message(title="T" * 40, body=body))
    assert message["noticeBarInfo"]["title"] == "T" * 31 + "…"
    assert message["noticeBarInfo"]["content"] == "B" * 99 + "…"
    assert message["noticeExpandInfo"] == {"noticeExpandType": 1, "noticeExpandContent": body}
    assert _message_json(Message(body="only body"))["noticeBarInfo"]["title"] == "only body"
    assert _message_json(Message(title="only title"))["noticeBarInfo"]["content"] == "only title"


def test_minimal_notification_and_drop_rules():
    expected = {"noticeBarInfo": {"noticeBarType": 0, "title": "t", "content": "b"},
                "clickTypeInfo": {"clickType": 0},
                "pushTimeInfo": {"offLine": 1, "validTime": 24}}
    dropped = Message(title="t", body="b", badge=5, sound="ring", small_icon="ic",
                      large_icon="https://i/l.png", image="https://i/p.png", category="im",
                      channel_id="chat", priority="high", push_type="voip")
    assert _message_json(Message(title="t", body="b")) == expected
    assert _message_json(dropped) == expected
    assert _message_json(Message(title="t", body="b", badge_add=2)) == expected


def test_pass_through_drops_what_is_not_shown():
    message = Message(kind="data", body="dropped", data={"a": 1}, collapse_id="k",
                      click=ClickAction(type="url", target="https://x"))
    assert _message_json(message, valid_hours=3) == {
        "content": '{"a":1}', "pushTimeInfo": {"offLine": 1, "validTime": 3}}


def test_notify_key_keeps_a_valid_key_and_digests_any_other():
    assert notify_key("chat_9-x") == "chat_9-x"
    digest = notify_key("conversation:1234")
    assert len(digest) == 8 and digest == notify_key("conversation:1234")
    assert digest != notify_key("conversation:1235")
    assert all(c.isalnum() or c in "-_" for c in digest)


@pytest.mark.parametrize(("ttl_s", "hours"), [(1, 1), (3600, 1), (3601, 2), (72 * 3600, 72),
                                               (7 * 86400, 72)])
def test_valid_hours(ttl_s, hours):
    assert valid_hours(ttl_s) == hours


_GOOD_MESSAGE = {"noticeBarInfo": {"title": "t", "content": "c"},
                 "pushTimeInfo": {"offLine": 1, "validTime": 24}}


def _signed(message: dict, **change: str) -> dict[str, str]:
    form = {"appId": APP_ID, "pushIds": "A1", "messageJson": json.dumps(message)} | change
    return {**form, "sign": expected_sign(form, SECRET)}


@pytest.mark.parametrize(("form", "code"), [
    (_signed(_GOOD_MESSAGE), "200"),
    ({**_signed(_GOOD_MESSAGE), "sign": "0" * 32}, "1006"),
    (_signed(_GOOD_MESSAGE, appId="1"), "110000"),
    (_signed(_GOOD_MESSAGE, extra="1"), "110004"),
    (_signed(_GOOD_MESSAGE, pushIds=",".join(f"P{i}" for i in range(1001))), "1005"),
    (_signed(_GOOD_MESSAGE | {"noticeBarInfo": {"title": "t" * 33, "content": "c"}}), "1005"),
    (_signed(_GOOD_MESSAGE | {"clickTypeInfo": {"clickType": 3}}), "1005"),
    (_signed(_GOOD_MESSAGE | {"clickTypeInfo": {"clickType": 2}}), "1005"),
    (_signed(_GOOD_MESSAGE | {"pushTimeInfo": {"offLine": 1, "validTime": 73}}), "1005"),
    (_signed(_GOOD_MESSAGE | {"advanceInfo": {"notifyKey": "too-long-key"}}), "1005"),
    (_signed(_GOOD_MESSAGE | {"noticeExpandInfo": {"noticeExpandType": 1}}), "1005")])
async def test_fake_flyme_refuses_what_flyme_refuses(flyme, form, code):
    served, _ = flyme
    async with httpx.AsyncClient() as http:
        response = await http.post(served.url + NOTIFY_PATH, data=form)
    assert response.json()["code"] == code


async def test_fake_flyme_checks_pass_through_content(flyme):
    served, _ = flyme
    async with httpx.AsyncClient() as http:
        big = await http.post(served.url + DATA_PATH,
                              data=_signed({"content": "x" * 2001}))
        notice = await http.post(served.url + DATA_PATH, data=_signed(_GOOD_MESSAGE))
    assert (big.json()["code"], notice.json()["code"]) == ("1005", "1005")
