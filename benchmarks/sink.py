"""A fast local vendor endpoint: a raw asyncio HTTP/1.1 responder in its own process.

It answers the sandbox vendor's ``POST`` with ``{"results": [{"token", "status": "ok"}]}`` for
every token, on keep-alive connections, and counts requests and tokens so the scenario can
tell the rate the sender achieved from what the endpoint saw.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import IntEnum
from multiprocessing.connection import Connection
from typing import Any, cast

import msgspec
import uvloop

from benchmarks.child import Report, serve_commands


class Slot(IntEnum):
    """Counters the endpoint shares with the scenario."""

    REQUESTS = 0
    TOKENS = 1
    CONNECTIONS = 2


@dataclass(frozen=True, slots=True)
class SinkSpec:
    """Listen on 127.0.0.1:``port``."""

    port: int


class _Body(msgspec.Struct):
    tokens: list[str]


class _Result(msgspec.Struct):
    token: str
    status: str = "ok"


_decode = msgspec.json.Decoder(_Body).decode
_encode = msgspec.json.Encoder().encode
_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
_BAD = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class _Window:
    """When the requests since the last report came."""

    def __init__(self) -> None:
        self.first = 0.0
        self.last = 0.0

    def seen(self) -> None:
        now = time.time()
        self.first = self.first or now
        self.last = now

    def report(self) -> Report:
        out: Report = {"first_request": self.first, "last_request": self.last}
        self.first = self.last = 0.0
        return out


class _Http(asyncio.Protocol):
    """One client connection: parse requests with a Content-Length body, answer each."""

    def __init__(self, counters: Any, window: _Window) -> None:
        self._counters = counters
        self._window = window
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._counters[Slot.CONNECTIONS] += 1

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            length = _content_length(bytes(self._buffer[:end]))
            if length is None:
                self._reply(_BAD)
                return
            if len(self._buffer) < end + 4 + length:
                return
            body = bytes(self._buffer[end + 4:end + 4 + length])
            del self._buffer[:end + 4 + length]
            self._answer(body)

    def _answer(self, body: bytes) -> None:
        try:
            tokens = _decode(body).tokens
        except msgspec.DecodeError:
            self._reply(_BAD)
            return
        payload = _encode({"results": [_Result(t) for t in tokens]})
        self._counters[Slot.REQUESTS] += 1
        self._counters[Slot.TOKENS] += len(tokens)
        self._window.seen()
        self._reply(_HEAD + str(len(payload)).encode() + b"\r\n\r\n" + payload)

    def _reply(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.write(data)
        if data is _BAD:
            self._transport.close()


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip()) if value.strip().isdigit() else None
    return 0


def main(spec: SinkSpec, counters: Any, conn: Connection) -> None:
    """Entry point of the endpoint process."""
    uvloop.run(_run(spec, counters, conn))


async def _run(spec: SinkSpec, counters: Any, conn: Connection) -> None:
    window = _Window()
    server = await asyncio.get_running_loop().create_server(
        lambda: _Http(counters, window), "127.0.0.1", spec.port, backlog=1024)
    try:
        await serve_commands(conn, window.report)
    finally:
        server.close()
