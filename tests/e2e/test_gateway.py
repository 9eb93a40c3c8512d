"""The gateway process alone, on the real Redis and Kafka: handshake, auth, bad input,
duplicate logins, rate limits, bindings. Pushes are written straight into its node inbox."""

from __future__ import annotations

import time

import msgpack
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from herald.device import Device, Refused
from herald.redis_store import RedisStore
from proto import frames, keys, tokens
from proto.envelopes import NodeDelivery, NodeRecall, encode_internal
from proto.frames import Ack, CloseCode, Hello, Ping, Pong, Push, Register
from proto.message import Message
from tests.harness import Role, eventually, eventually_async, free_port, metric, scrape


@pytest.fixture
async def gateway(logdir, uid):
    port, metrics_port = free_port(), free_port()
    role = Role(["gateway"], {"HERALD_NODE_ID": f"node-{uid}", "HERALD_PORT": str(port),
                              "HERALD_METRICS_PORT": str(metrics_port),
                              "HERALD_HELLO_TIMEOUT_S": "0.5", "HERALD_CLIENT_RATE": "5",
                              "HERALD_CLIENT_BURST": "10", "HERALD_DRAIN_GRACE_S": "0.1"},
                logdir / "gateway.log")
    await role.wait_log("gateway listening")
    role.url = f"ws://127.0.0.1:{port}"
    role.metrics_port = metrics_port
    role.node = f"node-{uid}"
    yield role
    assert await role.stop() == 0


async def close_of(url: str, *messages) -> tuple[int, str]:
    """Send raw messages and return the close code and reason the server ends with."""
    async with connect(url, subprotocols=[frames.SUBPROTOCOL]) as ws:
        for message in messages:
            await ws.send(message)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await ws.recv()
    return closed.value.rcvd.code, closed.value.rcvd.reason


def raw_hello(app: str, rid: str, token: str, **fields) -> bytes:
    return msgpack.packb({"op": 1, "v": 1, "app": app, "rid": rid, "token": token, **fields})


async def push_to(store: RedisStore, node: str, app: str, rids: list[str], task: str,
                  title: str) -> None:
    frame = frames.encode(Push(mid=task, task=task, msg=frames.message_map(Message(title=title)),
                               ts=1))
    entry = NodeDelivery(app, task, task, frame, rids, push_flag=1)
    await store.send_to_nodes([(node, encode_internal(entry))])


@pytest.mark.parametrize(("messages", "code", "reason"), [
    ([b"\xc1\xc1"], CloseCode.BAD_FRAME, "not a msgpack frame"),
    (["text frame"], CloseCode.UNSUPPORTED_DATA, "binary"),
    ([frames.encode(Ack("m1"))], CloseCode.HELLO_EXPECTED, "REGISTER or HELLO"),
    ([raw_hello("a", "r", "1.x", v=9)], CloseCode.UNSUPPORTED_VERSION, "version 1"),
    ([raw_hello("a:b", "r", "1.x")], CloseCode.BAD_FRAME, "'app'"),
    ([raw_hello("no-such-app", "r", "1.x")], CloseCode.AUTH_FAILED, "unknown app"),
    ([], CloseCode.HELLO_EXPECTED, "no HELLO in time"),
    ([b"\x00" * (16 * 1024 + 1)], CloseCode.MESSAGE_TOO_BIG, ""),
])
async def test_bad_first_frames_close_with_a_code(gateway, messages, code, reason):
    got_code, got_reason = await close_of(gateway.url, *messages)
    assert got_code == code
    assert reason in got_reason


@pytest.mark.parametrize("offered", [None, ["herald.v0"]])
async def test_a_client_without_the_subprotocol_is_refused(gateway, offered):
    with pytest.raises(InvalidStatus) as refused:
        await connect(gateway.url, subprotocols=offered)
    assert refused.value.response.status_code == 400


async def test_registration_gives_a_token_that_only_proves_that_device(gateway, app, uid):
    device = Device(app.app_id, app.client_key)
    await device.connect(gateway.url)
    rid, token = device.registration_id, device.token
    assert len(rid) == 32 and tokens.verify(app.device_secret.encode(), app.app_id, rid, token,
                                            time.time())
    await device.close()
    # A reinstall (no stored registration) gets a new registration id.
    reinstall = Device(app.app_id, app.client_key)
    await reinstall.connect(gateway.url)
    assert reinstall.registration_id != rid
    await reinstall.close()

    other = Device(app.app_id, app.client_key, registration_id=reinstall.registration_id,
                   token=token)
    with pytest.raises(Refused) as refused:
        await other.connect(gateway.url)
    assert refused.value.code == CloseCode.AUTH_FAILED
    assert "does not match" in refused.value.reason

    # The same registration id under another app, or a token of another app: refused.
    other_app = tokens.sign(b"other app's secret", "other-app", rid, int(time.time()) + 60)
    code, reason = await close_of(gateway.url, raw_hello(app.app_id, rid, other_app))
    assert (code, reason) == (CloseCode.AUTH_FAILED, "token does not match this app and device")
    expired = tokens.sign(app.device_secret.encode(), app.app_id, rid, int(time.time()) - 1)
    code, reason = await close_of(gateway.url, raw_hello(app.app_id, rid, expired))
    assert (code, reason) == (CloseCode.AUTH_FAILED, "token expired")
    forged = tokens.sign(b"not the secret", app.app_id, rid, int(time.time()) + 60)
    code, reason = await close_of(gateway.url, raw_hello(app.app_id, rid, forged))
    assert code == CloseCode.AUTH_FAILED
    code, reason = await close_of(gateway.url, frames.encode(Register(app=app.app_id, key="x")))
    assert (code, reason) == (CloseCode.AUTH_FAILED, "client key does not match the app")

    text = scrape(gateway.metrics_port)
    assert metric(text, "herald_gateway_auth_failures_total", reason="bad_token") == 3
    assert metric(text, "herald_gateway_auth_failures_total", reason="expired_token") == 1
    assert metric(text, "herald_gateway_auth_failures_total", reason="bad_client_key") == 1
    assert metric(text, "herald_gateway_registrations_total") == 2


async def test_renewing_a_registration_keeps_the_registration_id(gateway, app):
    device = Device(app.app_id, app.client_key)
    await device.connect(gateway.url)
    await device.close()
    rid = device.registration_id
    # As after 4004 "token expired": register again with the known rid and the old token.
    device.expired_token, device.token = device.token, ""
    await device.connect(gateway.url)
    assert device.registration_id == rid and device.token
    await device.close()
    # The client key alone (it ships in every copy of the app) cannot take a device over.
    thief = Device(app.app_id, app.client_key, registration_id=rid,
                   expired_token=tokens.sign(b"guess", app.app_id, rid, 1))
    with pytest.raises(Refused, match="does not match"):
        await thief.connect(gateway.url)
    gone = "f" * 32
    deleted = Device(app.app_id, app.client_key, registration_id=gone,
                     expired_token=tokens.sign(app.device_secret.encode(), app.app_id, gone, 1))
    with pytest.raises(Refused, match="unknown registration id"):
        await deleted.connect(gateway.url)


async def test_bad_frame_after_hello_closes_only_that_connection(gateway, app, store):
    good, bad = Device(app.app_id, app.client_key), Device(app.app_id, app.client_key)
    await good.connect(gateway.url)
    await bad.connect(gateway.url)
    await bad._ws.send(b"\x81\xa2op\x63")
    assert await bad.closed(5) == (CloseCode.BAD_FRAME, "unknown op 99")

    await push_to(store, gateway.node, app.app_id, [good.registration_id, "gone"], "t1",
                  "still here")
    (push,) = await good.wait_for(1, timeout_s=10)
    assert frames.message_of(push).title == "still here"
    await good.close()
    text = scrape(gateway.metrics_port)
    assert metric(text, "herald_gateway_disconnects_total", reason="bad_frame") == 1
    assert metric(text, "herald_gateway_pushes_total", outcome="not_connected") == 1


async def test_ping_pong_and_flooding(gateway, app):
    device = Device(app.app_id, app.client_key)
    await device.connect(gateway.url)
    await device.close()
    async with connect(gateway.url, subprotocols=[frames.SUBPROTOCOL]) as ws:
        await ws.send(frames.encode(Hello(app=app.app_id, rid=device.registration_id,
                                          token=device.token)))
        welcome = frames.decode_server(await ws.recv())
        assert welcome.epoch >= 2 and welcome.hb == 10
        await ws.send(frames.encode(Ping()))
        assert frames.decode_server(await ws.recv()) == Pong()
        # The budget is 10 frames in a burst: a flood is cut off with 4008.
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(100):
                await ws.send(frames.encode(Ping()))
            while True:
                await ws.recv()
        assert closed.value.rcvd.code == CloseCode.RATE_LIMITED


async def test_second_login_replaces_the_first(gateway, app):
    first = Device(app.app_id, app.client_key)
    await first.connect(gateway.url)
    second = Device(app.app_id, app.client_key, registration_id=first.registration_id,
                    token=first.token)
    await second.connect(gateway.url)
    assert await first.closed(5) == (CloseCode.REPLACED, "replaced by a newer connection")
    assert first.bye is not None and first.bye.reason == "replaced"
    assert second.welcome.epoch == first.welcome.epoch + 1
    await second.close()


async def test_bind_and_unbind_an_account(gateway, app, store):
    device = Device(app.app_id, app.client_key)
    await device.connect(gateway.url)
    assert (await device.bind("alice@example.com")).account == "alice@example.com"
    assert await store.account_devices(app.app_id, "alice@example.com") == [
        device.registration_id]
    assert (await device.bind("")).account == ""
    assert await store.account_devices(app.app_id, "alice@example.com") == []
    await device._ws.send(msgpack.packb({"op": 11, "account": "no spaces"}))
    code, reason = await device.closed(5)
    assert code == CloseCode.BAD_FRAME and "'account'" in reason


async def test_recall_reaches_the_device(gateway, app, store):
    device = Device(app.app_id, app.client_key)
    await device.connect(gateway.url)
    await push_to(store, gateway.node, app.app_id, [device.registration_id], "t9", "x")
    await device.wait_for(1, 10)
    recall = NodeRecall(app.app_id, "t9", [device.registration_id])
    await store.send_to_nodes([(gateway.node, encode_internal(recall))])
    await eventually(lambda: device.recalled == ["t9"], 10, "the RECALL frame")
    await device.close()


async def test_a_device_that_does_not_read_is_cut_off_and_others_keep_going(gateway, app,
                                                                            store):
    good = Device(app.app_id, app.client_key)
    await good.connect(gateway.url)
    slow = Device(app.app_id, app.client_key)
    await slow.connect(gateway.url)
    await slow.close()
    # A raw client that stops reading: websockets pauses the socket once one message waits.
    stuck = await connect(gateway.url, subprotocols=[frames.SUBPROTOCOL], max_queue=1,
                          max_size=None)
    await stuck.send(frames.encode(Hello(app=app.app_id, rid=slow.registration_id,
                                         token=slow.token)))
    big = Message(title="x", body="😀" * 4096)
    frame = frames.encode(Push(mid="big", task="big", msg=frames.message_map(big)))
    small = frames.encode(Push(mid="small", task="small", msg={"title": "hi"}))
    for n in range(400):
        entries = [(gateway.node, encode_internal(NodeDelivery(
            app.app_id, f"big{n}", f"big{n}", frame, [slow.registration_id], push_flag=1)))]
        if n % 100 == 0:
            entries.append((gateway.node, encode_internal(NodeDelivery(
                app.app_id, f"s{n}", f"s{n}", small.replace(b"small", f"s{n:04}".encode()),
                [good.registration_id], push_flag=1))))
        await store.send_to_nodes(entries)

    async def cut_off() -> bool:
        return metric(scrape(gateway.metrics_port), "herald_gateway_disconnects_total",
                      reason="slow_reader") == 1

    await eventually_async(cut_off, 30, "the slow reader to be disconnected")
    assert len(await good.wait_for(4, 10)) == 4
    text = scrape(gateway.metrics_port)
    assert metric(text, "herald_gateway_fallbacks_total", reason="slow_reader") > 0
    assert metric(text, "herald_gateway_connections") == 1
    await good.close()
    await stuck.close()


async def test_devices_feed_the_audience_indexes(gateway, app, store, redis_client):
    device = Device(app.app_id, app.client_key, platform="ios", vendor="apns",
                    vendor_token="ab" * 32)
    await device.connect(gateway.url)
    await device.bind("carol")
    await device.close()
    rid = device.registration_id
    assert await store.account_devices(app.app_id, "carol") == [rid]
    assert await redis_client.sismember(keys.all_devices(app.app_id), rid)
    assert await redis_client.sismember(keys.all_accounts(app.app_id), "carol")
    assert await redis_client.sismember(keys.auto_tag(app.app_id, "platform", "ios"), rid)
    assert await redis_client.zscore(keys.last_seen(app.app_id), rid) is not None
