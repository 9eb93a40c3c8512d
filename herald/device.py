"""A reference device client: the protocol as an SDK implements it, for tests and benchmarks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect

from proto import frames
from proto.frames import Ack, Hello, Ping, Push, Welcome


@dataclass(slots=True)
class Device:
    """A device that says HELLO, acks every push, and dedupes pushes by message id."""

    app_id: str
    registration_id: str
    vendor: str = ""
    vendor_token: str = ""
    platform: str = "android"
    #: Pushes shown to the user, once per message id, in arrival order.
    shown: list[Push] = field(default_factory=list)
    #: Every PUSH frame received, duplicates included.
    received: int = 0
    welcome: Welcome | None = None
    _seen: set[str] = field(default_factory=set)
    _ws: ClientConnection | None = None
    _reader: asyncio.Task[None] | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(self, url: str) -> Welcome:
        """Open the socket, say HELLO, and start acking pushes in the background."""
        self._ws = await connect(url, subprotocols=[frames.SUBPROTOCOL], compression=None,
                                 max_size=frames.MAX_FRAME_BYTES, ping_interval=None)
        hello = Hello(app=self.app_id, rid=self.registration_id, platform=self.platform,
                      vendor=self.vendor, vendor_token=self.vendor_token)
        await self._ws.send(frames.encode(hello))
        reply = frames.decode_server(await self._ws.recv())
        if not isinstance(reply, Welcome):
            raise RuntimeError(f"expected WELCOME, got {reply!r}")
        self.welcome = reply
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return reply

    async def _read(self) -> None:
        assert self._ws is not None
        async for data in self._ws:
            frame = frames.decode_server(data)  # type: ignore[arg-type]
            if isinstance(frame, Push):
                self.received += 1
                await self._ws.send(frames.encode(Ack(frame.mid)))
                if frame.mid not in self._seen:
                    self._seen.add(frame.mid)
                    self.shown.append(frame)
                    self._arrived.set()

    async def ping(self) -> None:
        """Send a heartbeat."""
        assert self._ws is not None
        await self._ws.send(frames.encode(Ping()))

    async def wait_for(self, count: int, timeout_s: float) -> list[Push]:
        """Wait until ``count`` distinct pushes were shown; TimeoutError otherwise."""
        async with asyncio.timeout(timeout_s):
            while len(self.shown) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.shown

    async def close(self) -> None:
        """Close the socket and stop reading."""
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
