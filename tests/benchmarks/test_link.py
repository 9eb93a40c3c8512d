"""The benchmark generators' own websocket framing (``benchmarks.link``) against websockets'
server protocol: whatever way TCP splits the server's frames, the link sees the same messages,
and what it writes parses as valid masked client frames."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from benchmarks.link import Link
from proto import frames
from proto.frames import Ack, Hello, Ping, Push, Welcome
from proto.limits import MAX_SERVER_FRAME_BYTES


class Transport:
    """Collects what the link writes, as a socket would."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


class Recorder:
    """A ``Listener`` that keeps what it is told."""

    def __init__(self) -> None:
        self.pushes: list[str] = []
        self.welcomes = 0
        self.pongs = 0
        self.lost: list[str] = []

    def on_welcome(self, link: Any, welcome: Welcome) -> None:
        self.welcomes += 1

    def on_push(self, link: Any, push: Push) -> None:
        self.pushes.append(push.mid)

    def on_pong(self) -> None:
        self.pongs += 1

    def on_lost(self, link: Any, reason: str) -> None:
        self.lost.append(reason)


HELLO = frames.encode(Hello(app="app", rid="dev-1", token="t"))


def opened() -> tuple[Link, Transport, Recorder, ServerProtocol]:
    """A link through a real opening handshake with websockets' server protocol."""
    recorder, transport = Recorder(), Transport()
    link = Link(parse_uri("ws://127.0.0.1:1/"), HELLO, recorder)
    link.connection_made(transport)  # type: ignore[arg-type]
    server = ServerProtocol(subprotocols=[frames.SUBPROTOCOL])  # type: ignore[list-item]
    server.receive_data(b"".join(transport.written))
    (request,) = server.events_received()
    server.send_response(server.accept(request))
    transport.written.clear()
    link.data_received(b"".join(server.data_to_send()))
    return link, transport, recorder, server


def client_frames(server: ServerProtocol, transport: Transport) -> list[Frame]:
    """What the link wrote, parsed (and unmasked) by the server protocol."""
    server.receive_data(b"".join(transport.written))
    transport.written.clear()
    return [e for e in server.events_received() if isinstance(e, Frame)]


def push(mid: str, pad: int = 0) -> bytes:
    return frames.encode(Push(mid=mid, task=mid, msg={"title": "t", "body": "x" * pad}))


def test_hello_follows_the_handshake_as_a_masked_frame():
    _, transport, _, server = opened()
    (hello,) = client_frames(server, transport)
    assert hello.opcode is Opcode.BINARY
    assert frames.decode_client(hello.data) == frames.decode_client(HELLO)


server_frames = st.lists(st.one_of(
    # Up to the longest body: short frames and 16-bit lengths (no valid PUSH needs 64 bits).
    st.tuples(st.just("push"), st.integers(0, 4096)),
    st.tuples(st.just("ping"), st.integers(0, 125)),
    st.tuples(st.just("fragmented"), st.integers(1, 4))), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(server_frames, st.data())
def test_any_split_of_the_servers_frames_gives_the_same_messages(spec, data):
    link, transport, recorder, server = opened()
    client_frames(server, transport)
    wire, mids, pings = b"", [], 0
    for number, (kind, size) in enumerate(spec):
        mid = f"m{number}"
        if kind == "push":
            wire += Frame(Opcode.BINARY, push(mid, size)).serialize(mask=False)
            mids.append(mid)
        elif kind == "ping":
            wire += Frame(Opcode.PING, b"p" * size).serialize(mask=False)
            pings += 1
        else:
            body = push(mid, 300)
            cuts = sorted(set(data.draw(st.lists(st.integers(1, len(body) - 1), min_size=size,
                                                 max_size=size))))
            parts = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
            for i, part in enumerate(parts):
                wire += Frame(Opcode.BINARY if i == 0 else Opcode.CONT, part,
                              fin=i == len(parts) - 1).serialize(mask=False)
            mids.append(mid)
    splits = sorted(set(data.draw(st.lists(st.integers(1, max(1, len(wire) - 1)), max_size=8))))
    for a, b in zip([0, *splits], [*splits, len(wire)], strict=True):
        link.data_received(wire[a:b])
    assert recorder.pushes == mids
    answers = client_frames(server, transport)
    assert [frames.decode_client(f.data) for f in answers if f.opcode is Opcode.BINARY] == [
        Ack(m) for m in mids]
    assert sum(f.opcode is Opcode.PONG for f in answers) == pings
    assert not transport.aborted


def test_a_close_is_answered_and_its_code_kept():
    link, transport, recorder, server = opened()
    client_frames(server, transport)
    link.data_received(Frame(Opcode.BINARY, push("m1")).serialize(mask=False)
                       + Frame(Opcode.CLOSE, b"\x0f\xa3bye").serialize(mask=False)
                       + Frame(Opcode.BINARY, push("m2")).serialize(mask=False))
    assert recorder.pushes == ["m1"] and transport.closed
    (ack, close) = client_frames(server, transport)
    assert frames.decode_client(ack.data) == Ack("m1")
    assert close.opcode is Opcode.CLOSE and close.data == b"\x0f\xa3"
    link.connection_lost(None)
    assert recorder.lost == ["close 4003"] and not link.send(frames.encode(Ping()))


def test_broken_framing_from_the_server_aborts_with_a_reason():
    for wire in (Frame(Opcode.BINARY, push("m")).serialize(mask=True),  # servers never mask
                 b"\x82\x7f" + (MAX_SERVER_FRAME_BYTES + 1).to_bytes(8, "big")):
        link, transport, recorder, _ = opened()
        link.data_received(wire)
        assert transport.aborted and recorder.pushes == []
        link.connection_lost(None)
        assert recorder.lost[0].startswith("protocol error")


def test_a_refused_handshake_is_reported():
    recorder, transport = Recorder(), Transport()
    link = Link(parse_uri("ws://127.0.0.1:1/"), HELLO, recorder)
    link.connection_made(transport)  # type: ignore[arg-type]
    link.data_received(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    link.connection_lost(None)
    assert recorder.lost[0].startswith("handshake:") and not recorder.pushes
