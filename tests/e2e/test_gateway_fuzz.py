"""Any bytes sent as a frame, before or after HELLO, get a clean close with a protocol code or
are answered; the gateway never fails with 1011, never hangs, and keeps serving others."""

from __future__ import annotations

import asyncio

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from herald.device import Device
from proto import frames
from proto.frames import CloseCode, Hello, Ping, Pong
from tests.e2e.test_gateway import push_to
from tests.harness import REDIS, Role, eventually_async, free_port, metric, scrape

# Closes a client may legitimately get for a bad frame.
CLEAN = {CloseCode.BAD_FRAME, CloseCode.HELLO_EXPECTED, CloseCode.UNSUPPORTED_VERSION,
         CloseCode.UNSUPPORTED_DATA, CloseCode.MESSAGE_TOO_BIG, CloseCode.AUTH_FAILED,
         CloseCode.RATE_LIMITED}

scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(
    max_size=70) | st.binary(max_size=70)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=8) | st.integers(0, 20), inner, max_size=4), max_leaves=12)
ops = st.sampled_from([int(op) for op in frames.Op] + [0, 99, -1])
maps = st.builds(lambda op, extra: msgpack.packb({"op": op, **extra}), ops,
                 st.dictionaries(st.sampled_from(["app", "rid", "token", "mid", "v", "key",
                                                  "account", "vendor", "vtoken", "msg"]),
                                 values, max_size=5))
payloads = st.binary(max_size=300) | maps | st.builds(
    lambda v: msgpack.packb(v, use_bin_type=True), values) | st.text(max_size=50)


@pytest.fixture(scope="module")
async def fuzz_gateway(tmp_path_factory):
    port, metrics_port = free_port(), free_port()
    logdir = tmp_path_factory.mktemp("fuzz")
    role = Role(["gateway"], {"HERALD_NODE_ID": f"fuzz-{port}", "HERALD_PORT": str(port),
                              "HERALD_METRICS_PORT": str(metrics_port),
                              "HERALD_HELLO_TIMEOUT_S": "2", "HERALD_DRAIN_GRACE_S": "0.1"},
                logdir / "gateway.log")
    await role.wait_log("gateway listening")
    role.url = f"ws://127.0.0.1:{port}"
    role.metrics_port = metrics_port
    yield role
    assert await role.stop() == 0


async def outcome(url: str, first: list[bytes | str], payload: bytes | str) -> int | str:
    """Send the frames; 'pong' if the connection still answers a PING, else the close code."""
    async with connect(url, subprotocols=[frames.SUBPROTOCOL]) as ws:
        try:
            for frame in [*first, payload]:
                await ws.send(frame)
            await ws.send(frames.encode(Ping()))
            async with asyncio.timeout(10):
                while True:
                    if frames.decode_server(await ws.recv()) == Pong():
                        return "pong"
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else "no close frame"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=payloads, after_hello=st.booleans())
async def test_any_frame_gets_a_clean_answer(fuzz_gateway, app, payload, after_hello):
    first: list[bytes | str] = []
    if after_hello:
        device = Device(app.app_id, app.client_key)
        await device.connect(fuzz_gateway.url)
        await device.close()
        first = [frames.encode(Hello(app=app.app_id, rid=device.registration_id,
                                     token=device.token))]
    result = await outcome(fuzz_gateway.url, first, payload)
    assert result == "pong" or result in CLEAN, result


async def test_the_gateway_still_serves_after_fuzzing(fuzz_gateway, app, redis_client):
    from herald.redis_store import RedisStore

    device = Device(app.app_id, app.client_key)
    await device.connect(fuzz_gateway.url)
    store = RedisStore(REDIS)
    await push_to(store, f"fuzz-{fuzz_gateway.url.rsplit(':', 1)[1]}", app.app_id,
                  [device.registration_id], "after-fuzz", "still here")
    await store.close()
    assert (await device.wait_for(1, 10))[0].task == "after-fuzz"
    await device.close()

    async def only_leftovers_gone() -> bool:
        return metric(scrape(fuzz_gateway.metrics_port), "herald_gateway_connections") == 0

    await eventually_async(only_leftovers_gone, 10, "every fuzz connection to be released")
    errors = [line for line in fuzz_gateway.logs() if line.get("level") == "error"]
    assert errors == []
