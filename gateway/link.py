"""The one way the gateway writes to a device: a direct write while the socket keeps up, a
bounded queue while it does not, and ``SlowReader`` when the queue is full.

The direct write goes through the connection's sans-I/O protocol (``protocol.send_binary`` then
``send_data``) instead of ``await send()``: a broadcast writes to every device of a node in one
loop, and a coroutine per device would cost more than the write itself. websockets is pinned
below 18 in ``pyproject.toml`` for this.
"""

from __future__ import annotations

import asyncio
from collections import deque

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State


class LinkClosed(Exception):
    """The connection is closed or closing; the frame was not written."""


class SlowReader(LinkClosed):
    """The device does not read: its queue is full. The connection must be closed."""


class Link:
    """Writes frames to one websocket with backpressure."""

    __slots__ = ("_low_water", "_max_queue", "_queue", "_writer", "ws")

    def __init__(self, ws: ServerConnection, *, low_water: int, max_queue: int) -> None:
        self.ws = ws
        self._low_water = low_water
        self._max_queue = max_queue
        self._queue: deque[bytes] | None = None
        self._writer: asyncio.Task[None] | None = None

    def write(self, frame: bytes) -> None:
        """Write or queue ``frame``; raise ``LinkClosed`` or ``SlowReader`` if it cannot be."""
        ws = self.ws
        if ws.protocol.state is not State.OPEN:
            raise LinkClosed
        if self._queue is None and ws.transport.get_write_buffer_size() <= self._low_water:
            ws.protocol.send_binary(frame)
            ws.send_data()
            return
        if self._queue is None:
            self._queue = deque()
        if len(self._queue) >= self._max_queue:
            raise SlowReader
        self._queue.append(frame)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    @property
    def queued(self) -> int:
        """Frames waiting for the socket."""
        return len(self._queue) if self._queue else 0

    async def _drain(self) -> None:
        # send() waits while the transport is above its high-water mark: that is the wait the
        # direct path avoids, here it is wanted.
        try:
            while self._queue:
                await self.ws.send(self._queue[0])
                self._queue.popleft()
        except ConnectionClosed:
            pass
        finally:
            if not self._queue:
                self._queue = None
            self._writer = None

    def abort(self) -> None:
        """Drop the connection at once: a device that does not read would not read a close
        frame either, and waiting out the close handshake keeps its pushes in limbo."""
        self.ws.transport.abort()

    def unsent(self) -> int:
        """Drop the queue (the connection is going away) and say how many frames it held."""
        count = self.queued
        self._queue = None
        if self._writer is not None:
            self._writer.cancel()
        return count
