"""One device connection, lean: a plain ``asyncio.Protocol`` that frames its own messages.

The reference client ``herald.device.Device`` keeps a full websockets connection, a reader task
and dedup state per device. A benchmark holds tens of thousands of them and every PUSH it reads
and every ACK it writes is CPU the gateway under test does not get on the same machine. So the
opening handshake is websockets' sans-I/O ``ClientProtocol`` (request, response checks), and
after it the link parses and writes frames itself: websockets' generator-based frame parser and
its per-frame ``secrets`` mask cost about a third of a generator's CPU per delivery. Frames are
masked with one random key per connection (RFC 6455 asks for a fresh key per frame to protect
intermediaries from scripted content; a load generator on loopback has neither).
"""

from __future__ import annotations

import asyncio
import os
import struct
from typing import Protocol, cast

from websockets.client import ClientProtocol
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import WebSocketURI

from proto import frames
from proto.errors import DecodeError
from proto.frames import Ack, Bye, Pong, Push, Welcome
from proto.limits import MAX_SERVER_FRAME_BYTES

_BINARY, _CLOSE, _PING, _PONG, _CONTINUATION = 0x2, 0x8, 0x9, 0xA, 0x0
#: Close code sent back when the server breaks the framing rules (RFC 6455 7.4.1).
_PROTOCOL_ERROR = 1002


class Listener(Protocol):
    """What a link tells its generator."""

    def on_welcome(self, link: Link, welcome: Welcome) -> None:
        """The device is connected: the server answered HELLO."""

    def on_push(self, link: Link, push: Push) -> None:
        """A PUSH arrived (and was acked)."""

    def on_pong(self) -> None:
        """A PONG arrived."""

    def on_lost(self, link: Link, reason: str) -> None:
        """The connection ended, before or after WELCOME."""


class Link(asyncio.Protocol):
    """A device's websocket: says HELLO on connect, acks every PUSH."""

    def __init__(self, uri: WebSocketURI, hello: bytes, listener: Listener) -> None:
        #: The handshake; None once it is done and the link frames by itself.
        self._ws: ClientProtocol | None = ClientProtocol(
            uri, subprotocols=[Subprotocol(frames.SUBPROTOCOL)], max_size=MAX_SERVER_FRAME_BYTES)
        self._hello = hello
        self._listener = listener
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._fragments: list[bytes] = []
        self._mask = os.urandom(4)
        self._open = False
        self.close_code: int | None = None
        self.welcomed = False
        self._lost_reason = "closed by server"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the opening handshake."""
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        assert self._ws is not None
        self._ws.send_request(self._ws.connect())
        for chunk in self._ws.data_to_send():
            self._transport.write(chunk)

    def data_received(self, data: bytes) -> None:
        """Finish the handshake, then parse every complete frame and act on it."""
        if self._ws is not None:
            self._handshake(data)
            return
        buffer = self._buffer + data if self._buffer else data
        start, end = 0, len(buffer)
        while end - start >= 2 and self._open:
            head, size = buffer[start], buffer[start + 1]
            at = start + 2
            if size & 0x80 or head & 0x70:
                self._fail("masked or extended frame from the server")
                return
            size &= 0x7F
            if size == 126:
                if end - at < 2:
                    break
                (size,) = struct.unpack_from("!H", buffer, at)
                at += 2
            elif size == 127:
                if end - at < 8:
                    break
                (size,) = struct.unpack_from("!Q", buffer, at)
                at += 8
            if size > MAX_SERVER_FRAME_BYTES:
                self._fail(f"a {size}-byte frame, over {MAX_SERVER_FRAME_BYTES}")
                return
            if end - at < size:
                break
            start = at + size
            self._on_raw(head & 0x80, head & 0x0F, buffer[at:start])
        self._buffer = buffer[start:] if start < end else b""

    def eof_received(self) -> bool:
        """The server closed its side."""
        if self._ws is not None:
            self._ws.receive_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """Tell the listener, with the close code when there was one."""
        self._open = False
        if self.close_code is not None:
            self._lost_reason = f"close {self.close_code}"
        elif exc is not None:
            self._lost_reason = type(exc).__name__
        self._listener.on_lost(self, self._lost_reason)

    def send(self, frame: bytes) -> bool:
        """Send one binary message; False if the connection is no longer open."""
        if not self._open:
            return False
        self._write(_BINARY, frame)
        return True

    def abort(self) -> None:
        """Drop the connection at once."""
        self._open = False
        if self._transport is not None:
            self._transport.abort()

    def _handshake(self, data: bytes) -> None:
        ws = self._ws
        assert ws is not None and self._transport is not None
        ws.receive_data(data)
        events = ws.events_received()
        if events and ws.handshake_exc is not None:
            self._lost_reason = f"handshake: {ws.handshake_exc}"
        if ws.state is State.OPEN:
            # Herald's gateway says nothing before HELLO, so nothing is buffered in the
            # handshake parser here; anything that is would be a frame lost in the switch.
            if ws.reader.buffer or any(not isinstance(e, Response) for e in events):
                self._lost_reason = "frames before HELLO"
                self.abort()
                return
            self._ws = None
            self._open = True
            self._write(_BINARY, self._hello)
            return
        for chunk in ws.data_to_send():
            if chunk:
                self._transport.write(chunk)
            else:
                self._transport.close()

    def _on_raw(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode in (_BINARY, _CONTINUATION):
            if not fin or self._fragments:
                self._fragments.append(payload)
                if not fin:
                    return
                payload = b"".join(self._fragments)
                self._fragments = []
            self._on_frame(payload)
        elif opcode == _PING:
            self._write(_PONG, payload)
        elif opcode == _CLOSE:
            self.close_code = struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else 1005
            self._write(_CLOSE, payload[:2])
            self._open = False
            assert self._transport is not None
            self._transport.close()

    def _on_frame(self, data: bytes) -> None:
        try:
            frame = frames.decode_server(data)
        except DecodeError as err:
            self._lost_reason = f"bad frame: {err.reason}"
            self.abort()
            return
        if isinstance(frame, Push):
            if self._open:
                self._write(_BINARY, frames.encode(Ack(frame.mid)))
            self._listener.on_push(self, frame)
        elif isinstance(frame, Pong):
            self._listener.on_pong()
        elif isinstance(frame, Welcome):
            self.welcomed = True
            self._listener.on_welcome(self, frame)
        elif isinstance(frame, Bye):
            self._lost_reason = f"BYE {frame.reason}"

    def _fail(self, reason: str) -> None:
        self._lost_reason = f"protocol error: {reason}"
        self._write(_CLOSE, struct.pack("!H", _PROTOCOL_ERROR))
        self.abort()

    def _write(self, opcode: int, payload: bytes) -> None:
        """One final, masked frame in one transport write."""
        assert self._transport is not None
        size = len(payload)
        if size < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        key = self._mask
        keys = (key * (size // 4 + 1))[:size]
        masked = (int.from_bytes(payload, "little") ^ int.from_bytes(keys, "little")).to_bytes(
            size, "little")
        self._transport.write(head + key + masked)
