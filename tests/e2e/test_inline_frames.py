"""ACKs and PINGs are settled in the gateway's connection callback (``gateway/connection.py``);
every other frame still goes through the connection's handler task. The gateway process on the
real Redis and Kafka: what a device sees and what the node reports must be as before."""

from __future__ import annotations

import msgpack
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from herald.device import Device
from herald.redis_store import RedisStore
from proto import frames
from proto.envelopes import NodeDelivery, encode_internal
from proto.frames import Ack, Bind, Bound, Click, CloseCode, Hello, Ping, Pong, Push, Welcome
from tests.e2e.test_walking_skeleton import events_of
from tests.harness import Role, eventually, free_port, metric, scrape


@pytest.fixture
async def gateway(logdir, uid):
    port, metrics_port = free_port(), free_port()
    role = Role(["gateway"], {"HERALD_NODE_ID": f"node-{uid}", "HERALD_PORT": str(port),
                              "HERALD_METRICS_PORT": str(metrics_port),
                              "HERALD_CLIENT_RATE": "5", "HERALD_CLIENT_BURST": "10",
                              "HERALD_DRAIN_GRACE_S": "0.1"},
                logdir / "gateway.log")
    await role.wait_log("gateway listening")
    role.url = f"ws://127.0.0.1:{port}"
    role.metrics_port = metrics_port
    role.node = f"node-{uid}"
    yield role
    assert await role.stop() == 0


async def raw_session(gateway: Role, app) -> tuple[ClientConnection, Device]:
    """A raw client after HELLO and WELCOME, for a device registered beforehand."""
    device = Device(app.app_id, app.client_key)
    await device.connect(gateway.url)
    await device.close()
    ws = await connect(gateway.url, subprotocols=[frames.SUBPROTOCOL], ping_interval=None)
    await ws.send(frames.encode(Hello(app=app.app_id, rid=device.registration_id,
                                      token=device.token)))
    assert isinstance(frames.decode_server(await ws.recv()), Welcome)
    return ws, device


async def push(store: RedisStore, gateway: Role, app_id: str, rid: str, tasks: list[str]) -> None:
    """Write one push per task id to the device through the node's inbox."""
    entries = []
    for task in tasks:
        frame = frames.encode(Push(mid=task, task=task, msg={"title": task}, ts=1))
        entries.append((gateway.node, encode_internal(
            NodeDelivery(app_id, task, task, frame, [rid], push_flag=1))))
    await store.send_to_nodes(entries)


async def pushes(ws: ClientConnection, count: int) -> list[str]:
    """The message ids of the next ``count`` PUSH frames."""
    mids = []
    while len(mids) < count:
        frame = frames.decode_server(await ws.recv())
        if isinstance(frame, Push):
            mids.append(frame.mid)
    return mids


async def close_code(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def disconnected(gateway: Role, reason: str) -> str:
    """The node's metrics once it counted one disconnect for ``reason`` (it counts after the
    close handshake, which the client may see end first)."""
    def counted() -> str:
        text = scrape(gateway.metrics_port)
        return text if metric(text, "herald_gateway_disconnects_total", reason=reason) else ""
    text: str = await eventually(counted, 10, f"a {reason} disconnect")
    assert metric(text, "herald_gateway_disconnects_total", reason=reason) == 1
    return text


async def test_acks_settle_and_emit_delivered_beyond_the_frame_budget(gateway, app, store,
                                                                     events, uid):
    ws, device = await raw_session(gateway, app)
    # 30 pushes acked at once: matched ACKs spend no budget (10 frames), nothing is cut off.
    tasks = [f"t{uid}-{n}" for n in range(30)]
    await push(store, gateway, app.app_id, device.registration_id, tasks)
    assert sorted(await pushes(ws, 30)) == sorted(tasks)
    for task in tasks:
        await ws.send(frames.encode(Ack(task)))
    await ws.send(frames.encode(Ping()))
    assert frames.decode_server(await ws.recv()) == Pong()
    delivered = await eventually(
        lambda: [e for t in tasks for e in events_of(events, t) if e.stage == "delivered"],
        20, "30 delivered events")
    assert sorted(e.task_id for e in delivered) == sorted(tasks)
    assert {e.registration_id for e in delivered} == {device.registration_id}
    text = scrape(gateway.metrics_port)
    assert metric(text, "herald_gateway_acks_total", matched="true") == 30
    assert metric(text, "herald_gateway_acks_total", matched="false") == 0
    # An ACK repeated settles nothing a second time.
    await ws.send(frames.encode(Ack(tasks[0])))
    await ws.send(frames.encode(Ping()))
    assert frames.decode_server(await ws.recv()) == Pong()
    assert metric(scrape(gateway.metrics_port), "herald_gateway_acks_total", matched="false") == 1
    await ws.close()


async def test_unmatched_ack_flood_is_rate_limited(gateway, app):
    ws, _ = await raw_session(gateway, app)
    for n in range(100):
        await ws.send(frames.encode(Ack(f"nothing-{n}")))
    assert (await close_code(ws))[0] == CloseCode.RATE_LIMITED
    text = await disconnected(gateway, "rate_limited")
    # The budget of 10 (plus what refilled meanwhile) was spent, then one more closed; the
    # ACKs after it were never read.
    assert 11 <= metric(text, "herald_gateway_acks_total", matched="false") < 100


async def test_pings_are_answered_in_order(gateway, app):
    ws, _ = await raw_session(gateway, app)
    for _ in range(5):
        await ws.send(frames.encode(Ping()))
    for _ in range(5):
        assert frames.decode_server(await ws.recv()) == Pong()
    await ws.close()


async def test_a_bad_frame_after_hello_closes_and_later_acks_settle_nothing(gateway, app,
                                                                          store, uid):
    ws, device = await raw_session(gateway, app)
    task = f"t{uid}"
    await push(store, gateway, app.app_id, device.registration_id, [task])
    assert await pushes(ws, 1) == [task]
    await ws.send(msgpack.packb({"op": 99}))
    await ws.send(frames.encode(Ack(task)))
    assert await close_code(ws) == (CloseCode.BAD_FRAME, "unknown op 99")
    text = await disconnected(gateway, "bad_frame")
    # The ACK came after the bad frame: the push goes back down the offline path as before.
    assert metric(text, "herald_gateway_acks_total", matched="true") == 0
    assert metric(text, "herald_gateway_fallbacks_total", reason="closed") == 1


@pytest.mark.parametrize(("message", "code", "reason"), [
    ("text frame", CloseCode.UNSUPPORTED_DATA, "frames are binary messages"),
    (b"\xc1", CloseCode.BAD_FRAME, "not a msgpack frame"),
    (frames.encode(Hello(app="a", rid="r", token="t")), CloseCode.BAD_FRAME,
     "HELLO was already received"),
])
async def test_refused_frames_close_as_before(gateway, app, message, code, reason):
    ws, _ = await raw_session(gateway, app)
    await ws.send(message)
    got_code, got_reason = await close_code(ws)
    assert got_code == code and reason in got_reason


async def test_bind_is_answered_before_a_ping_sent_after_it(gateway, app, store, events, uid):
    ws, device = await raw_session(gateway, app)
    account = f"acct-{uid}"
    await ws.send(frames.encode(Bind(account)))
    await ws.send(frames.encode(Ping()))
    # The PING waits behind the BIND, whose store write is awaited: BOUND first, then PONG.
    assert frames.decode_server(await ws.recv()) == Bound(account)
    assert frames.decode_server(await ws.recv()) == Pong()
    assert await store.account_devices(app.app_id, account) == [device.registration_id]
    await ws.send(frames.encode(Click(f"c{uid}")))
    clicked = await eventually(lambda: [e for e in events_of(events, f"c{uid}")
                                        if e.stage == "clicked"], 20, "the clicked event")
    assert clicked[0].registration_id == device.registration_id
    await ws.close()
