"""The device generator process: opens many lean device connections and holds them.

Each process connects its share of devices with a bounded number of handshakes in flight
(retrying a failed one, as a device would),
binding every socket to one of several loopback source addresses so that the ephemeral port
range is no limit, pings each device once per heartbeat interval the server asked for, and
records, for every PUSH, the latency from the produce timestamp in the message's ``data["t"]``
(microseconds since the epoch) to its receipt. Devices are registered already: each says HELLO
with a token the generator signs with the app's device secret.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from dataclasses import dataclass
from enum import IntEnum
from multiprocessing.connection import Connection
from typing import Any

import uvloop
from websockets.uri import parse_uri

from benchmarks.child import Report, raise_nofile, serve_commands
from benchmarks.link import Link
from proto import frames, tokens
from proto.frames import Hello, Ping, Push, Welcome

#: Seconds between two heartbeat ticks; each tick pings its slice of the devices.
_TICK_S = 0.1
_PING = frames.encode(Ping())


class Slot(IntEnum):
    """Counters a device process shares with the scenario."""

    CONNECTED = 0
    FAILED = 1
    LOST = 2
    PUSHES = 3


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """Devices ``first .. first+count-1`` of app ``app_id``, on the gateway at ``port``."""

    port: int
    app_id: str
    device_secret: str
    first: int
    count: int
    sources: tuple[str, ...]
    concurrency: int = 100
    connect_timeout_s: float = 30.0
    #: Attempts per device; a failed one is retried after a jittered, growing delay.
    attempts: int = 3


def rid(index: int) -> str:
    """Registration id of device number ``index``."""
    return f"dev-{index}"


class Devices:
    """The devices of one generator process; the ``Listener`` of all their links."""

    def __init__(self, spec: DeviceSpec, counters: Any) -> None:
        self._spec = spec
        self._counters = counters
        self._uri = parse_uri(f"ws://127.0.0.1:{spec.port}/")
        self._links: list[Link] = []
        self._waiting: dict[Link, asyncio.Future[None]] = {}
        self._heartbeat_s = 0
        self._failures: Counter[str] = Counter()
        self._losses: Counter[str] = Counter()
        self._pings = 0
        self._pongs = 0
        self._retries = 0
        self._first_start = 0.0
        self._last_welcome = 0.0
        self._connect_ms: list[float] = []
        self._latency_us: list[int] = []
        self._routed_ms: list[int] = []
        #: Why connecting stopped early, if it did (an unexpected error, reported to the parent).
        self.error = ""

    # Listener

    def on_welcome(self, link: Link, welcome: Welcome) -> None:
        """See ``Listener.on_welcome``."""
        self._heartbeat_s = welcome.hb
        self._links.append(link)
        self._last_welcome = time.time()
        waiting = self._waiting.pop(link, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    def on_push(self, link: Link, push: Push) -> None:
        """See ``Listener.on_push``."""
        now_ns = time.time_ns()
        self._counters[Slot.PUSHES] += 1
        sent_us = push.msg.get("data", {}).get("t")
        if isinstance(sent_us, int):
            self._latency_us.append(now_ns // 1000 - sent_us)
        self._routed_ms.append(now_ns // 1_000_000 - push.ts)

    def on_pong(self) -> None:
        """See ``Listener.on_pong``."""
        self._pongs += 1

    def on_lost(self, link: Link, reason: str) -> None:
        """See ``Listener.on_lost``."""
        waiting = self._waiting.pop(link, None)
        if waiting is not None:
            if not waiting.done():
                waiting.set_exception(ConnectionError(reason))
        elif link.welcomed:
            self._counters[Slot.LOST] += 1
            self._losses[reason] += 1
        link.welcomed = False

    # Work

    async def connect_all(self) -> None:
        """Connect every device, ``concurrency`` handshakes at a time."""
        self._first_start = time.time()
        indexes = iter(range(self._spec.first, self._spec.first + self._spec.count))

        async def worker() -> None:
            for index in indexes:
                await self._connect(index)

        await asyncio.gather(*(worker() for _ in range(self._spec.concurrency)))

    async def _connect(self, index: int) -> None:
        spec = self._spec
        token = tokens.sign(spec.device_secret.encode(), spec.app_id, rid(index),
                            int(time.time()) + 86_400)
        hello = frames.encode(Hello(app=spec.app_id, rid=rid(index), token=token))
        for attempt in range(1, spec.attempts + 1):
            failure = await self._attempt(index, hello)
            if failure is None:
                self._counters[Slot.CONNECTED] += 1
                return
            self._failures[failure] += 1
            if attempt < spec.attempts:
                self._retries += 1
                await asyncio.sleep(random.uniform(0.5, 1.5) * attempt)
        self._counters[Slot.FAILED] += 1

    async def _attempt(self, index: int, hello: bytes) -> str | None:
        """One connection attempt: None once WELCOME came, else why not."""
        spec = self._spec
        loop = asyncio.get_running_loop()
        welcomed = loop.create_future()
        made: list[Link] = []

        def factory() -> Link:
            link = Link(self._uri, hello, self)
            self._waiting[link] = welcomed
            made.append(link)
            return link

        source = spec.sources[index % len(spec.sources)]
        started = time.perf_counter()
        try:
            async with asyncio.timeout(spec.connect_timeout_s):
                await loop.create_connection(factory, "127.0.0.1", spec.port,
                                             local_addr=(source, 0))
                await welcomed
        except (OSError, TimeoutError) as exc:
            for link in made:
                self._waiting.pop(link, None)
                link.abort()
            return type(exc).__name__ + (f" {exc}" if isinstance(exc, ConnectionError) else "")
        self._connect_ms.append((time.perf_counter() - started) * 1000)
        return None

    async def heartbeat(self) -> None:
        """Ping every connected device once per heartbeat interval, spread evenly."""
        cursor = 0
        while True:
            await asyncio.sleep(_TICK_S)
            count = len(self._links)
            if not count or not self._heartbeat_s:
                continue
            for _ in range(min(count, math.ceil(count * _TICK_S / self._heartbeat_s))):
                link = self._links[cursor % count]
                cursor += 1
                if link.welcomed and link.send(_PING):
                    self._pings += 1

    def abort_all(self) -> None:
        """Drop every connection at once."""
        for link in self._links:
            link.abort()

    def report(self) -> Report:
        """Counters so far, and the samples gathered since the previous report."""
        out: Report = {
            "connected": self._counters[Slot.CONNECTED], "failed": self._counters[Slot.FAILED],
            "lost": self._counters[Slot.LOST],
            "failed_attempts": dict(self._failures), "retries": self._retries,
            "losses": dict(self._losses),
            "pings": self._pings, "pongs": self._pongs, "first_start": self._first_start,
            "last_welcome": self._last_welcome, "connect_ms": self._connect_ms,
            "latency_us": self._latency_us, "routed_ms": self._routed_ms, "error": self.error,
        }
        self._connect_ms, self._latency_us, self._routed_ms = [], [], []
        return out


def main(spec: DeviceSpec, counters: Any, conn: Connection) -> None:
    """Entry point of a device generator process."""
    raise_nofile()
    uvloop.run(serve(Devices(spec, counters), conn))


async def serve(devices: Devices, conn: Connection) -> None:
    """Connect and heartbeat ``devices`` (a ``Devices`` or a subclass) while answering the
    scenario's commands; drop every connection when told to stop."""
    tasks = [asyncio.create_task(devices.connect_all()), asyncio.create_task(devices.heartbeat())]

    def note_error(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            devices.error = repr(task.exception())

    for task in tasks:
        task.add_done_callback(note_error)
    try:
        await serve_commands(conn, devices.report)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        devices.abort_all()
