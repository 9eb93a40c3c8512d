"""Chat and call messages and the APNs environment, through every vendor client to its fake.

Each test sends one job with the real client to the vendor's fake server (which checks auth
and payload as the vendor does) and asserts what the server saw, field by field, as
``docs/MESSAGE.md`` and the vendor modules document it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.types import ASGIApp, Receive, Scope, Send

from proto.envelopes import VendorJob, VendorTarget
from proto.message import Message
from tests.vendors import test_apns
from tests.vendors.helpers import Clock, outcomes
from tests.vendors.servers.apns import ApnsState, fake_apns
from tests.vendors.servers.base import serve
from tests.vendors.servers.fcm import FcmState, ServiceAccount, fcm_app
from tests.vendors.servers.harmony import HarmonyAccount, HarmonyState, harmony_app
from tests.vendors.servers.honor import TOKEN_PATH, honor_app
from tests.vendors.servers.huawei import huawei_app
from tests.vendors.servers.meizu import make_app as meizu_app
from tests.vendors.servers.oppo import fake_oppo
from tests.vendors.servers.vivo import fake_vivo
from tests.vendors.servers.xiaomi import make_app as xiaomi_app
from vendors import apns, fcm, harmony, honor, huawei, meizu, oppo, vivo, xiaomi
from vendors.common import crc31

NOW = 1_700_000_000.0
CHAT = Message(kind="chat", title="Bob", body="lunch?", conversation="group-42", sender="bob",
               data={"m": 7})
CALL = Message(kind="call", title="Alice", body="is calling", sender="alice",
               data={"room": "r1"})
CHAT_DATA = {"m": 7, "conversation": "group-42", "sender": "bob"}
CALL_DATA = {"room": "r1", "sender": "alice"}
APNS_TOKEN = "ab" * 32


def _job(message: Message, *tokens: str, ttl_s: int = 60) -> VendorJob:
    return VendorJob(app_id="app", task_id="task-1", msg_id="msg-1", message=message,
                     targets=[VendorTarget(f"rid-{t}", t) for t in tokens],
                     expires_at_ms=int((NOW + ttl_s) * 1000))


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


# --- APNs: push type, topic, the environment's host --------------------------------------------


def two_hosts(clock: Clock) -> tuple[ASGIApp, dict[str, ApnsState]]:
    """Two fake APNs behind one TLS server: production at the root, development under
    ``/dev`` (one server, so that one CA file trusts both)."""
    states, apps = {}, {}
    for environment in ("production", "development"):
        states[environment], apps[environment] = fake_apns(
            team_id=test_apns.TEAM, key_id=test_apns.KEY_ID, bundle_id=test_apns.BUNDLE,
            public_key=test_apns.KEY.public_key(), clock=clock)

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if path.startswith("/dev/"):
            scope = {**scope, "path": path.removeprefix("/dev"), "raw_path": None}
            await apps["development"](scope, receive, send)
        else:
            await apps["production"](scope, receive, send)

    return dispatch, states


@pytest.fixture
async def hosts(clock) -> AsyncIterator[dict[str, ApnsState]]:
    """Two fake APNs, production and development, and a client pointed at both."""
    app, states = two_hosts(clock)
    async with serve(app, tls=True) as served:
        client = apns.ApnsClient(base_url=served.url, sandbox_url=f"{served.url}/dev",
                                 verify=served.verify, clock=clock)
        yield {**states, "client": client}  # type: ignore[dict-item]
        await client.close()


def _apns_creds(environment: str) -> dict[str, str]:
    return {**test_apns.CREDS, "environment": environment}


async def test_apns_call_is_a_voip_push_to_the_voip_topic(hosts):
    results = await hosts["client"].send(_job(CALL, APNS_TOKEN), _apns_creds("production"))
    assert outcomes(results) == [(f"rid-{APNS_TOKEN}", "", False)]
    (request,) = hosts["production"].requests
    assert request.status == 200
    assert request.headers["apns-topic"] == f"{test_apns.BUNDLE}.voip"
    assert (request.headers["apns-push-type"], request.headers["apns-priority"]) == ("voip", "10")
    assert request.payload == {"aps": {"alert": {"title": "Alice", "body": "is calling"}},
                               **CALL_DATA}


async def test_apns_chat_is_an_alert_collapsed_by_conversation(hosts):
    await hosts["client"].send(_job(CHAT, APNS_TOKEN), _apns_creds("production"))
    (request,) = hosts["production"].requests
    assert (request.headers["apns-topic"], request.headers["apns-push-type"]) == (
        test_apns.BUNDLE, "alert")
    assert request.headers["apns-collapse-id"] == "group-42"
    # badge_add is dropped: APNs sets absolute badges only.
    assert request.payload == {"aps": {"alert": {"title": "Bob", "body": "lunch?"},
                                       "category": "IM"}, **CHAT_DATA}


@pytest.mark.parametrize(("credentials", "message", "host"), [
    ("production", "development", "development"),
    ("development", "production", "production"),
    ("development", "", "development"),
    ("production", "", "production"),
])
async def test_apns_message_environment_picks_the_host(hosts, credentials, message, host):
    other = "production" if host == "development" else "development"
    hello = Message(title="hi", environment=message)  # type: ignore[arg-type]
    results = await hosts["client"].send(_job(hello, APNS_TOKEN), _apns_creds(credentials))
    assert outcomes(results) == [(f"rid-{APNS_TOKEN}", "", False)]
    assert [r.status for r in hosts[host].requests] == [200]
    assert hosts[other].requests == []


async def test_apns_keeps_one_connection_per_environment(hosts):
    client = hosts["client"]
    for environment in ("development", "production", "development", "production"):
        await client.send(_job(Message(title="hi", environment=environment), APNS_TOKEN),
                          _apns_creds("production"))
    assert [len(hosts[e].requests) for e in ("production", "development")] == [2, 2]
    # One HTTP/2 connection per host: every request of a host came from the same peer port.
    for environment in ("production", "development"):
        assert len({r.peer for r in hosts[environment].requests}) == 1


# --- FCM ----------------------------------------------------------------------------------------


@pytest.fixture
async def fcm_fake(clock):
    account = ServiceAccount("herald-kinds", "s@herald-kinds.iam.gserviceaccount.com", "kid",
                             rsa.generate_private_key(public_exponent=65537, key_size=2048))
    state = FcmState(account, clock)
    async with serve(fcm_app(state), tls=True) as served:
        client = fcm.FcmClient(base_url=served.url, verify=served.verify, clock=clock)
        yield state, client, account.credentials(f"{served.url}/token")
        await client.close()


async def test_fcm_chat_and_call(fcm_fake):
    state, client, creds = fcm_fake
    await client.send(_job(CHAT, "tok-chat"), creds)
    await client.send(_job(CALL, "tok-call"), creds)
    chat, call = (s["body"]["message"] for s in state.sends)
    assert chat["notification"] == {"title": "Bob", "body": "lunch?"}
    assert chat["data"] == {"m": "7", "conversation": "group-42", "sender": "bob"}
    assert chat["android"] == {"priority": "NORMAL", "ttl": "60s", "collapse_key": "group-42",
                               "notification": {"tag": "group-42"}}
    assert call["notification"] == {"title": "Alice", "body": "is calling"}
    assert call["data"] == {"room": "r1", "sender": "alice"}
    assert call["android"] == {"priority": "HIGH", "ttl": "60s"}


# --- HarmonyOS ----------------------------------------------------------------------------------


@pytest.fixture
async def harmony_fake(clock):
    account = HarmonyAccount("101653523863", "300125961", "c60c27b8f2f34e9b",
                             rsa.generate_private_key(public_exponent=65537, key_size=2048))
    state = HarmonyState(account, clock)
    async with serve(harmony_app(state)) as served:
        client = harmony.HarmonyClient(base_url=served.url, verify=served.verify, clock=clock)
        yield state, client, account.credentials()
        await client.close()


async def test_harmony_call_is_push_type_10_and_chat_an_im_alert(harmony_fake):
    state, client, creds = harmony_fake
    assert outcomes(await client.send(_job(CALL, "tok-call"), creds)) == [
        ("rid-tok-call", "", False)]
    await client.send(_job(CHAT, "tok-chat"), creds)
    call, chat = state.sends
    assert call["push_type"] == "10"
    assert call["body"]["payload"] == {"extraData": json.dumps(CALL_DATA, separators=(",", ":"))}
    assert chat["push_type"] == "0"
    assert chat["body"]["payload"] == {"notification": {
        "category": "IM", "title": "Bob", "body": "lunch?",
        "clickAction": {"actionType": 0, "data": CHAT_DATA}, "badge": {"addNum": 1},
        "notifyId": crc31("group-42")}}


# --- Huawei and Honor ---------------------------------------------------------------------------


@pytest.fixture
async def huawei_fake(clock):
    app, state = huawei_app()
    async with serve(app, tls=True) as served:
        client = huawei.HuaweiClient(base_url=served.url,
                                     auth_url=f"{served.url}/oauth2/v3/token", timeout_s=5,
                                     verify=served.verify, clock=clock)
        yield state, client
        await client.close()


HUAWEI_CREDS = {"client_id": "108123456", "client_secret": "hw-secret",
                "badge_class": "com.example.app.MainActivity"}


async def test_huawei_call_is_category_voip_high_urgency(huawei_fake):
    state, client = huawei_fake
    await client.send(_job(CALL, "tok-call"), HUAWEI_CREDS)
    await client.send(_job(CHAT, "tok-chat"), HUAWEI_CREDS)
    call, chat = (s["body"]["message"] for s in state.sends)
    assert json.loads(call["data"]) == CALL_DATA
    assert (call["android"]["category"], call["android"]["urgency"]) == ("VOIP", "HIGH")
    assert call["android"]["notification"]["title"] == "Alice"
    assert json.loads(chat["data"]) == CHAT_DATA
    assert (chat["android"]["category"], chat["android"]["urgency"]) == ("IM", "NORMAL")
    notification = chat["android"]["notification"]
    assert notification["tag"] == "group-42"
    assert notification["badge"] == {"add_num": 1, "class": HUAWEI_CREDS["badge_class"]}


@pytest.fixture
async def honor_fake(clock):
    app, state = honor_app()
    async with serve(app, tls=True) as served:
        client = honor.HonorClient(base_url=served.url, auth_url=served.url + TOKEN_PATH,
                                   timeout_s=5, verify=served.verify, clock=clock)
        yield state, client
        await client.close()


HONOR_CREDS = {"app_id": "104412345", "client_id": "honor-client", "client_secret": "ho-secret",
               "badge_class": "com.example.app.MainActivity"}


async def test_honor_chat_and_call_are_normal_importance_notifications(honor_fake):
    state, client = honor_fake
    await client.send(_job(CALL, "tok-call"), HONOR_CREDS)
    await client.send(_job(CHAT, "tok-chat"), HONOR_CREDS)
    call, chat = (s["body"] for s in state.sends)
    assert json.loads(call["data"]) == CALL_DATA
    assert call["android"]["notification"]["importance"] == "NORMAL"
    assert json.loads(chat["data"]) == CHAT_DATA
    notification = chat["android"]["notification"]
    assert (notification["importance"], notification["tag"]) == ("NORMAL", "group-42")
    assert notification["badge"] == {"addNum": 1, "badgeClass": HONOR_CREDS["badge_class"]}


# --- Xiaomi, OPPO, vivo, Meizu ------------------------------------------------------------------


@pytest.fixture
async def xiaomi_fake(clock):
    app, state = xiaomi_app("xm-secret", "com.example.chat")
    async with serve(app, tls=True) as served:
        client = xiaomi.XiaomiClient(base_url=served.url, verify=served.verify, timeout_s=5,
                                     clock=clock)
        yield state, client
        await client.close()


async def test_xiaomi_chat_and_call_channels(xiaomi_fake):
    state, client = xiaomi_fake
    creds = {"app_secret": "xm-secret", "package_name": "com.example.chat"}
    await client.send(_job(CHAT, "a"), creds)
    await client.send(_job(CALL, "b"), creds)
    chat, call = (r.form for r in state.requests)
    assert (chat["pass_through"], chat["extra.channel_id"]) == ("0", "IM")
    assert json.loads(chat["payload"]) == CHAT_DATA
    assert chat["notify_id"] == str(crc31("group-42"))
    assert (call["pass_through"], call["extra.channel_id"]) == ("0", "VOIP")
    assert json.loads(call["payload"]) == CALL_DATA


@pytest.fixture
async def oppo_fake(clock):
    app, state = fake_oppo("oppo-key", "oppo-secret", clock)
    async with serve(app, tls=True) as served:
        client = oppo.OppoClient(base_url=served.url, verify=served.verify, clock=clock)
        yield state, client
        await client.close()


async def test_oppo_chat_and_call_are_im_notifications(oppo_fake):
    state, client = oppo_fake
    creds = {"app_key": "oppo-key", "master_secret": "oppo-secret"}
    await client.send(_job(CHAT, "a"), creds)
    await client.send(_job(CALL, "b"), creds)
    chat, call = (b.messages[0]["notification"] for b in state.batches)
    assert (chat["category"], chat["notify_level"]) == ("IM", 2)
    assert json.loads(chat["action_parameters"]) == CHAT_DATA
    assert chat["notify_id"] == oppo.notify_id("group-42")
    # OPPO's IM class covers calls: VOIP goes as IM, at the high level.
    assert (call["category"], call["notify_level"]) == ("IM", 16)
    assert json.loads(call["action_parameters"]) == CALL_DATA


@pytest.fixture
async def vivo_fake(clock):
    app, state = fake_vivo(10004, "vivo-key", "vivo-secret", clock)
    async with serve(app, tls=True) as served:
        client = vivo.VivoClient(base_url=served.url, verify=served.verify, clock=clock)
        yield state, client
        await client.close()


async def test_vivo_chat_and_call_are_im_system_messages(vivo_fake):
    state, client = vivo_fake
    creds = {"app_id": "10004", "app_key": "vivo-key", "app_secret": "vivo-secret"}
    await client.send(_job(CHAT, "a"), creds)
    await client.send(_job(CALL, "b"), creds)
    chat, call = (c.body for c in state.calls)
    assert (chat["category"], chat["classification"]) == ("IM", 1)
    assert chat["clientCustomMap"] == {"m": "7", "conversation": "group-42", "sender": "bob"}
    assert chat["notifyId"] == vivo.notify_id("group-42")
    assert (call["category"], call["classification"]) == ("IM", 1)
    assert call["clientCustomMap"] == {"room": "r1", "sender": "alice"}


@pytest.fixture
async def meizu_fake(clock):
    app, state = meizu_app("100999", "mz-secret")
    async with serve(app) as served:
        client = meizu.MeizuClient(base_url=served.url, verify=served.verify, timeout_s=5,
                                   clock=clock)
        yield state, client
        await client.close()


async def test_meizu_chat_and_call_are_notifications(meizu_fake):
    state, client = meizu_fake
    creds = {"app_id": "100999", "app_secret": "mz-secret"}
    await client.send(_job(CHAT, "A1"), creds)
    await client.send(_job(CALL, "A2"), creds)
    chat, call = state.requests
    assert (chat.path, call.path) == (meizu.NOTIFY_PATH, meizu.NOTIFY_PATH)
    assert chat.message["clickTypeInfo"] == {"clickType": 0, "parameters": CHAT_DATA}
    assert chat.message["advanceInfo"] == {"notifyKey": meizu.notify_key("group-42")}
    assert call.message["clickTypeInfo"] == {"clickType": 0, "parameters": CALL_DATA}
