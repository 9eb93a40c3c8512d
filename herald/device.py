"""A reference device client: the protocol as an SDK implements it, for tests and benchmarks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TypeVar

from websockets.asyncio.client import ClientConnection, connect

from proto import frames
from proto.errors import DecodeError
from proto.frames import (
    Ack,
    Bind,
    Bound,
    Bye,
    Click,
    Hello,
    Ping,
    Push,
    Recall,
    Register,
    Registered,
    Welcome,
)
from proto.limits import MAX_SERVER_FRAME_BYTES

T = TypeVar("T")


class Refused(Exception):
    """The server closed the connection instead of answering; ``code`` and ``reason`` say why."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(slots=True)
class Device:
    """A device that registers once, says HELLO, acks every push and dedupes by message id."""

    app_id: str
    client_key: str
    vendor: str = ""
    vendor_token: str = ""
    platform: str = "android"
    locale: str = ""
    #: The IANA time zone the device reports (its quiet hours are in it).
    tz: str = ""
    registration_id: str = ""
    token: str = ""
    #: The last token, kept to renew the registration when the server says it expired.
    expired_token: str = ""
    #: Send ACKs for pushes (a device that stops acking exercises the ack timeout).
    acking: bool = True
    #: Pushes shown to the user, once per message id, in arrival order.
    shown: list[Push] = field(default_factory=list)
    #: Every PUSH frame received, duplicates included.
    received: int = 0
    recalled: list[str] = field(default_factory=list)
    bye: Bye | None = None
    welcome: Welcome | None = None
    _seen: set[str] = field(default_factory=set)
    _ws: ClientConnection | None = None
    _reader: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _bound: asyncio.Queue[Bound] = field(default_factory=asyncio.Queue)

    async def connect(self, url: str, **connect_args: object) -> Welcome:
        """Open the socket, REGISTER if this device has no registration yet, say HELLO, and
        start acking pushes in the background."""
        self._ws = ws = await connect(url, subprotocols=[frames.SUBPROTOCOL], compression=None,
                                      max_size=MAX_SERVER_FRAME_BYTES, ping_interval=None,
                                      **connect_args)  # type: ignore[arg-type]
        if not self.token:
            await ws.send(frames.encode(Register(
                app=self.app_id, key=self.client_key, platform=self.platform,
                vendor=self.vendor, vtoken=self.vendor_token, locale=self.locale,
                tz=self.tz, rid=self.registration_id, token=self.expired_token)))
            registered = await self._expect(Registered)
            self.registration_id, self.token = registered.rid, registered.token
        await ws.send(frames.encode(Hello(app=self.app_id, rid=self.registration_id,
                                          token=self.token)))
        self.welcome = await self._expect(Welcome)
        self.bye = None
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self.welcome

    async def _expect(self, kind: type[T]) -> T:
        assert self._ws is not None
        try:
            reply = frames.decode_server(await self._ws.recv())  # type: ignore[arg-type]
        except Exception as exc:
            rcvd = getattr(exc, "rcvd", None)
            raise Refused(rcvd.code if rcvd else None, rcvd.reason if rcvd else str(exc)) from None
        if not isinstance(reply, kind):
            raise RuntimeError(f"expected {kind.__name__}, got {reply!r}")
        return reply

    async def _read(self) -> None:
        assert self._ws is not None
        async for data in self._ws:
            try:
                frame = frames.decode_server(data)  # type: ignore[arg-type]
            except DecodeError:
                continue  # a server op or field newer than this client: ignored (PROTOCOL.md)
            if isinstance(frame, Push):
                self.received += 1
                if self.acking:
                    await self._ws.send(frames.encode(Ack(frame.mid)))
                if frame.mid not in self._seen:
                    self._seen.add(frame.mid)
                    self.shown.append(frame)
            elif isinstance(frame, Recall):
                self.recalled.append(frame.mid)
            elif isinstance(frame, Bound):
                self._bound.put_nowait(frame)
            elif isinstance(frame, Bye):
                self.bye = frame
            self._changed.set()

    async def ping(self) -> None:
        """Send a heartbeat."""
        assert self._ws is not None
        await self._ws.send(frames.encode(Ping()))

    async def click(self, msg_id: str) -> None:
        """Report that the user opened message ``msg_id``."""
        assert self._ws is not None
        await self._ws.send(frames.encode(Click(msg_id)))

    async def bind(self, account: str, timeout_s: float = 5) -> Bound:
        """Bind to ``account`` (empty: unbind) and wait for the server's answer."""
        assert self._ws is not None
        await self._ws.send(frames.encode(Bind(account)))
        async with asyncio.timeout(timeout_s):
            return await self._bound.get()

    async def wait_for(self, count: int, timeout_s: float) -> list[Push]:
        """Wait until ``count`` distinct pushes were shown; TimeoutError otherwise."""
        async with asyncio.timeout(timeout_s):
            while len(self.shown) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.shown

    async def closed(self, timeout_s: float) -> tuple[int | None, str]:
        """Wait until the server closes the connection; its close code and reason."""
        assert self._ws is not None and self._reader is not None
        async with asyncio.timeout(timeout_s):
            await asyncio.gather(self._reader, return_exceptions=True)
            await self._ws.wait_closed()
        return self._ws.close_code, self._ws.close_reason or ""

    async def close(self) -> None:
        """Close the socket and stop reading."""
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
