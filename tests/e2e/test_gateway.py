"""The gateway process alone: bad frames close one connection with a code; others keep going."""

from __future__ import annotations

import msgpack
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from herald.device import Device
from herald.redis_store import RedisStore
from proto import frames
from proto.envelopes import NodeDelivery, encode_internal
from proto.frames import Ack, CloseCode, Hello, Ping, Pong, Push
from tests.harness import REDIS, Role, free_port, metric, scrape


@pytest.fixture
async def gateway(logdir, uid):
    port, metrics_port = free_port(), free_port()
    role = Role(["gateway"], {"HERALD_NODE_ID": f"node-{uid}", "HERALD_PORT": str(port),
                              "HERALD_METRICS_PORT": str(metrics_port),
                              "HERALD_HELLO_TIMEOUT_S": "0.5"}, logdir / "gateway.log")
    await role.wait_log("gateway listening")
    role.url = f"ws://127.0.0.1:{port}"
    role.metrics_port = metrics_port
    yield role
    assert await role.stop() == 0


def _hello(uid: str, **fields) -> bytes:
    return msgpack.packb({"op": 1, "v": 0, "app": f"app-{uid}", "rid": "raw", **fields})


async def _close_of(url: str, *messages) -> tuple[int, str]:
    async with connect(url, subprotocols=[frames.SUBPROTOCOL]) as ws:
        for message in messages:
            await ws.send(message)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await ws.recv()
    return closed.value.rcvd.code, closed.value.rcvd.reason


@pytest.mark.parametrize(("messages", "code", "reason"), [
    ([b"\xc1\xc1"], CloseCode.BAD_FRAME, "not a msgpack frame"),
    (["text frame"], CloseCode.UNSUPPORTED_DATA, "binary"),
    ([frames.encode(Ack("m1"))], CloseCode.HELLO_EXPECTED, "first frame must be HELLO"),
    ([msgpack.packb({"op": 1, "v": 9, "app": "a", "rid": "r"})], CloseCode.UNSUPPORTED_VERSION,
     "version 0"),
    ([msgpack.packb({"op": 1, "v": 0, "app": "a:b", "rid": "r"})], CloseCode.BAD_FRAME, "'app'"),
    ([], CloseCode.HELLO_EXPECTED, "no HELLO in time"),
])
async def test_bad_first_frames_close_with_a_code(gateway, messages, code, reason):
    got_code, got_reason = await _close_of(gateway.url, *messages)
    assert got_code == code
    assert reason in got_reason


async def test_bad_frame_after_hello_closes_only_that_connection(gateway, uid):
    device = Device(f"app-{uid}", "good")
    await device.connect(gateway.url)
    code, reason = await _close_of(gateway.url, _hello(uid), b"\x81\xa2op\x63")
    assert (code, reason) == (CloseCode.BAD_FRAME, "unknown op 99")
    code, reason = await _close_of(gateway.url, _hello(uid, rid="twice"),
                                   _hello(uid, rid="twice"))
    assert code == CloseCode.BAD_FRAME and "already" in reason

    # The good device is still served: a push in the node inbox reaches it.
    store = RedisStore(REDIS)
    frame = frames.encode(Push(mid="m1", task="t1", title="still here", ts_ms=1))
    entry = NodeDelivery(f"app-{uid}", "t1", "m1", frame, ["good", "gone"])
    await store.deliver_to_nodes([(f"node-{uid}", encode_internal(entry))])
    await store.close()
    (push,) = await device.wait_for(1, timeout_s=10)
    assert push.title == "still here"
    await device.close()
    text = scrape(gateway.metrics_port)
    assert metric(text, "herald_gateway_disconnects_total", reason="bad_frame") == 2
    assert metric(text, "herald_gateway_pushes_total", outcome="not_connected") == 1


async def test_ping_gets_pong(gateway, uid):
    async with connect(gateway.url, subprotocols=[frames.SUBPROTOCOL]) as ws:
        await ws.send(frames.encode(Hello(app=f"app-{uid}", rid="pinger")))
        welcome = frames.decode_server(await ws.recv())
        assert welcome.node == f"node-{uid}" and welcome.epoch >= 1
        await ws.send(frames.encode(Ping()))
        assert frames.decode_server(await ws.recv()) == Pong()
