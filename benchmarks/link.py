"""One device connection, lean: websockets' sans-I/O client protocol on an asyncio transport.

The reference client ``herald.device.Device`` keeps a full websockets connection, a reader task
and dedup state per device. A benchmark holds tens of thousands of them, so this one is a plain
``asyncio.Protocol``: bytes in, frames decoded with ``proto.frames``, PUSH acked at once, and
everything else reported to a ``Listener`` that the generator process owns.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, cast

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import WebSocketURI

from proto import frames
from proto.errors import DecodeError
from proto.frames import Ack, Bye, Pong, Push, Welcome
from proto.limits import MAX_SERVER_FRAME_BYTES


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
        self._ws = ClientProtocol(uri, subprotocols=[Subprotocol(frames.SUBPROTOCOL)],
                                  max_size=MAX_SERVER_FRAME_BYTES)
        self._hello = hello
        self._listener = listener
        self._transport: asyncio.Transport | None = None
        self.welcomed = False
        self._lost_reason = "closed by server"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the opening handshake."""
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self._ws.send_request(self._ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        """Feed bytes to the protocol and act on what it parsed."""
        self._ws.receive_data(data)
        for event in self._ws.events_received():
            if isinstance(event, Response):
                if self._ws.handshake_exc is not None:
                    self._lost_reason = f"handshake: {self._ws.handshake_exc}"
                else:
                    self._ws.send_binary(self._hello)
            elif isinstance(event, Frame) and event.opcode is Opcode.BINARY:
                self._on_frame(event.data)
        self._flush()

    def eof_received(self) -> bool:
        """The server closed its side."""
        self._ws.receive_eof()
        self._flush()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """Tell the listener, with the close code when there was one."""
        if self._ws.close_code is not None:
            self._lost_reason = f"close {self._ws.close_code}"
        elif exc is not None:
            self._lost_reason = type(exc).__name__
        self._listener.on_lost(self, self._lost_reason)

    def send(self, frame: bytes) -> bool:
        """Send one binary message; False if the connection is no longer open."""
        if self._ws.state is not State.OPEN:
            return False
        self._ws.send_binary(frame)
        self._flush()
        return True

    def abort(self) -> None:
        """Drop the connection at once."""
        if self._transport is not None:
            self._transport.abort()

    def _on_frame(self, data: bytes) -> None:
        try:
            frame = frames.decode_server(data)
        except DecodeError as err:
            self._lost_reason = f"bad frame: {err.reason}"
            self.abort()
            return
        if isinstance(frame, Push):
            if self._ws.state is State.OPEN:
                self._ws.send_binary(frames.encode(Ack(frame.mid)))
            self._listener.on_push(self, frame)
        elif isinstance(frame, Pong):
            self._listener.on_pong()
        elif isinstance(frame, Welcome):
            self.welcomed = True
            self._listener.on_welcome(self, frame)
        elif isinstance(frame, Bye):
            self._lost_reason = f"BYE {frame.reason}"

    def _flush(self) -> None:
        assert self._transport is not None
        for chunk in self._ws.data_to_send():
            if chunk:
                self._transport.write(chunk)
            else:
                self._transport.close()
                return
