"""``gateway.connection.InlineConnection`` without a network: its own parse of short binary
frames must give, for any stream of frames cut anywhere, what websockets' parser alone gives."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.connection import Connection
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from gateway.connection import InlineConnection, connection_class
from proto import frames
from proto.frames import Ack, Bind, Click, Ping, Pong

MAX_SIZE = 200
_PONG = frames.encode(Pong())
_HANDSHAKE = (b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              b"Sec-WebSocket-Version: 13\r\n\r\n")


class Transport:
    """What a connection writes and asks of its socket."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.calls: list[str] = []

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.calls.append("eof")

    def close(self) -> None:
        self.calls.append("close")

    def abort(self) -> None:
        self.calls.append("abort")

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False


class Target:
    """Settles ACKs and PINGs (a PONG written through the connection), as the gateway does."""

    def __init__(self) -> None:
        self.settled: list[bytes] = []
        self.ws: InlineConnection | None = None

    @staticmethod
    def settle(target: Target, data: bytes) -> bool:
        try:
            frame = frames.decode_client(data)
        except Exception:
            return False
        if isinstance(frame, Ping):
            assert target.ws is not None
            target.ws.protocol.send_binary(_PONG)
            target.ws.send_data()
        elif not isinstance(frame, Ack):
            return False
        target.settled.append(data)
        return True


Inline = connection_class(Target.settle)


class ParserOnly(Inline):  # type: ignore[misc,valid-type]
    """The same connection with its own parse switched off: websockets parses every frame."""

    __slots__ = ()

    def _between_frames(self) -> bool:
        return False


async def opened(kind: type[InlineConnection]) -> tuple[InlineConnection, Transport, Target]:
    """A connection of ``kind`` after the opening handshake and HELLO, settling for a target."""
    protocol = ServerProtocol(max_size=MAX_SIZE)
    protocol.receive_data(_HANDSHAKE)
    (request,) = protocol.events_received()
    assert isinstance(request, Request)
    protocol.send_response(protocol.accept(request))
    protocol.data_to_send()
    assert protocol.state is State.OPEN
    ws = kind(protocol, None, ping_interval=None)  # type: ignore[arg-type]
    transport = Transport()
    # Connection's own connection_made: ServerConnection's would start a handler task.
    Connection.connection_made(ws, transport)  # type: ignore[arg-type]
    ws.request = request
    target = Target()
    target.ws = ws
    ws.settle_with(target)
    return ws, transport, target


async def outcome(kind: type[InlineConnection], chunks: list[bytes]) -> dict[str, Any]:
    ws, transport, target = await opened(kind)
    for chunk in chunks:
        if ws.protocol.state is State.CLOSED:
            break
        ws.data_received(chunk)
    queued = [(f.opcode, bytes(f.data), f.fin) for f in ws.recv_messages.frames.queue]
    return {"settled": target.settled, "queued": queued, "written": b"".join(transport.written),
            "calls": transport.calls, "state": ws.protocol.state,
            "close_sent": ws.protocol.close_sent, "close_rcvd": ws.protocol.close_rcvd,
            "backlog": ws._backlog}


def _frame(opcode: Opcode, data: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    return Frame(opcode, data, fin).serialize(mask=mask)


def _binary(payload: bytes) -> bytes:
    return _frame(Opcode.BINARY, payload)


mids = st.text("abcdefghij0123456789-", min_size=1, max_size=64)
wire_frames = st.one_of(
    st.builds(lambda mid: _binary(frames.encode(Ack(mid))), mids),
    st.just(_binary(frames.encode(Ping()))),
    st.builds(lambda mid: _binary(frames.encode(Click(mid))), mids),
    st.builds(lambda account: _binary(frames.encode(Bind(account))), mids),
    st.builds(lambda raw: _binary(msgpack.packb(raw)), st.dictionaries(
        st.sampled_from(["op", "mid", "x"]), st.integers(-2, 20) | mids, max_size=3)),
    st.builds(_binary, st.binary(max_size=MAX_SIZE + 20)),  # bad, long (126+) or oversized
    st.builds(lambda data: _frame(Opcode.BINARY, data, mask=False), st.binary(max_size=10)),
    st.builds(lambda data: _frame(Opcode.TEXT, data), st.text(max_size=10).map(str.encode)),
    st.builds(lambda data: _frame(Opcode.PING, data), st.binary(max_size=10)),
    st.builds(lambda data: _frame(Opcode.PONG, data), st.binary(max_size=10)),
    st.builds(lambda a, b: _frame(Opcode.BINARY, a, fin=False) + _frame(Opcode.CONT, b),
              st.binary(max_size=20), st.binary(max_size=20)),
    st.builds(lambda data: _frame(Opcode.CONT, data), st.binary(max_size=5)),
    st.just(_frame(Opcode.CLOSE, Close(1000, "bye").serialize())),
    st.builds(lambda data: bytes([0xC2, 0x80 | len(data)]) + b"\0\0\0\0" + data,  # RSV1
              st.binary(max_size=10)),
)


@st.composite
def split_streams(draw: st.DrawFn) -> list[bytes]:
    stream = b"".join(draw(st.lists(wire_frames, min_size=1, max_size=12)))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=8)))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@settings(max_examples=400, deadline=None)
@given(split_streams())
def test_any_split_of_any_stream_reads_as_websockets_alone(chunks: list[bytes]) -> None:
    fast = asyncio.run(outcome(Inline, chunks))
    assert fast == asyncio.run(outcome(ParserOnly, chunks))


async def test_short_binary_frames_skip_the_websockets_parser() -> None:
    ws, transport, target = await opened(Inline)
    fed: list[bytes] = []
    receive = ws.protocol.receive_data
    ws.protocol.receive_data = lambda data: (fed.append(bytes(data)), receive(data))[1]
    acks = [frames.encode(Ack(f"m{n}")) for n in range(3)]
    ws.data_received(b"".join(_binary(ack) for ack in acks))
    assert target.settled == acks and fed == []
    # A frame cut in two goes to the parser, and so does the next chunk (mid-frame), then the
    # parser is between frames again.
    ping = _binary(frames.encode(Ping()))
    ws.data_received(ping[:3])
    ws.data_received(ping[3:])
    assert target.settled[-1] == frames.encode(Ping()) and fed == [ping[:3], ping[3:]]
    assert transport.written == [Frame(Opcode.BINARY, _PONG).serialize(mask=False)]
    ws.data_received(_binary(acks[0]))
    assert fed == [ping[:3], ping[3:]] and target.settled[-1] == acks[0]
