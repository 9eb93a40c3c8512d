"""The gateway node: accepts devices, keeps presence fresh, and writes its inbox to sockets."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from typing import Any

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from gateway import metrics
from gateway.session import Session
from herald.bus import Bus
from herald.settings import GatewaySettings
from herald.store import Held, Store
from proto import frames, keys, topics
from proto.envelopes import DeviceRecord, decode_node_delivery
from proto.errors import DecodeError
from proto.events import Channel, Event, Stage, encode_event, now_ms
from proto.frames import Ack, Bye, ByeReason, CloseCode, Hello, Ping, Pong, Welcome

log = structlog.get_logger()

_PONG = frames.encode(Pong())
#: Presence refreshes per pipeline, so one sweep never builds a giant Redis request.
_REFRESH_CHUNK = 2000
#: Reconnect delay window handed to clients when the node drains.
_DRAIN_RETRY_MS = (500, 5000)


class _Closed(Exception):
    """The connection must close with ``code`` and ``reason``."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Gateway:
    """One gateway node: a websocket server plus its inbox reader and heartbeat sweeper."""

    def __init__(self, settings: GatewaySettings, store: Store, bus: Bus) -> None:
        self.settings = settings
        self.node = settings.node_id
        self._store = store
        self._bus = bus
        self._sessions: dict[tuple[str, str], tuple[Session, ServerConnection]] = {}
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._spawned: set[asyncio.Task[None]] = set()

    @property
    def connected(self) -> int:
        """Devices connected to this node."""
        return len(self._sessions)

    async def start(self) -> None:
        """Start reading the inbox and sweeping heartbeats, then accept connections."""
        after = await self._store.inbox_tail(self.node)
        loop = asyncio.get_running_loop()
        for coro in (self._read_inbox(after), self._sweep()):
            task = loop.create_task(coro)
            task.add_done_callback(self._watch)
            self._tasks.append(task)
        # The write limit sits far above max_write_buffer, so send() never waits on a slow
        # socket: _write_push checks the buffer first and drops instead.
        self._server = await serve(
            self._handle, self.settings.host, self.settings.port,
            subprotocols=[frames.SUBPROTOCOL], max_size=frames.MAX_FRAME_BYTES,
            compression=None, ping_interval=None,
            write_limit=4 * self.settings.max_write_buffer,
        )
        log.info("gateway listening", host=self.settings.host, port=self.settings.port)

    def _watch(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background task died; stopping the node", exc_info=task.exception())
            if self._server is not None:
                self._server.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run short work (a close, an event) without waiting for it, but keep and check it."""
        task = asyncio.get_running_loop().create_task(coro)
        self._spawned.add(task)
        task.add_done_callback(self._reap)

    def _reap(self, task: asyncio.Task[None]) -> None:
        self._spawned.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work failed", exc_info=task.exception())

    async def serve_forever(self) -> None:
        """Run until the server closes (after ``drain`` or a fatal background error)."""
        assert self._server is not None
        await self._server.wait_closed()

    async def drain(self) -> None:
        """Stop accepting, tell every client to reconnect elsewhere (with jitter), and close."""
        if self._server is None:
            return
        self._server.close(close_connections=False)
        for session, ws in list(self._sessions.values()):
            bye = Bye(ByeReason.SHUTDOWN, retry_ms=random.randint(*_DRAIN_RETRY_MS))
            try:
                await ws.send(frames.encode(bye))
            except ConnectionClosed:
                continue
            await ws.close(CloseCode.GOING_AWAY, ByeReason.SHUTDOWN)
            await self._store.drop_presence(session.held)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    # Connections

    async def _handle(self, ws: ServerConnection) -> None:
        try:
            session = await self._open(ws)
        except _Closed as closed:
            metrics.DISCONNECTS.labels(closed.code.name.lower()).inc()
            await ws.close(closed.code, closed.reason)
            return
        except ConnectionClosed:
            metrics.DISCONNECTS.labels("before_hello").inc()
            return
        reason = "client_closed"
        try:
            await self._converse(ws, session)
        except _Closed as closed:
            reason = closed.code.name.lower()
            await ws.close(closed.code, closed.reason)
        except ConnectionClosed:
            pass
        finally:
            metrics.DISCONNECTS.labels(reason).inc()
            await self._forget(session)

    async def _open(self, ws: ServerConnection) -> Session:
        try:
            async with asyncio.timeout(self.settings.hello_timeout_s):
                data = await ws.recv()
        except TimeoutError:
            raise _Closed(CloseCode.HELLO_EXPECTED, "no HELLO in time") from None
        hello = self._decode(data)
        if not isinstance(hello, Hello):
            raise _Closed(CloseCode.HELLO_EXPECTED, "the first frame must be HELLO")
        if hello.version != frames.PROTOCOL_VERSION:
            raise _Closed(CloseCode.UNSUPPORTED_VERSION,
                          f"protocol version {frames.PROTOCOL_VERSION} only")
        record = DeviceRecord(hello.platform, hello.vendor, hello.vendor_token)
        epoch = await self._store.connect_device(hello.app, hello.rid, self.node, record,
                                                 keys.PRESENCE_TTL_S)
        held = Held(hello.app, hello.rid, self.node, epoch)
        session = Session(held, asyncio.get_running_loop().time())
        replaced = self._sessions.get(session.device)
        self._sessions[session.device] = (session, ws)
        metrics.CONNECTS.inc()
        metrics.CONNECTIONS.set(len(self._sessions))
        if replaced is not None:
            await replaced[1].close(CloseCode.NORMAL, "replaced by a newer connection")
        await ws.send(frames.encode(Welcome(epoch=epoch, heartbeat_s=self.settings.heartbeat_s,
                                            node=self.node)))
        log.info("device connected", app_id=hello.app, registration_id=hello.rid, epoch=epoch)
        return session

    async def _converse(self, ws: ServerConnection, session: Session) -> None:
        loop = asyncio.get_running_loop()
        async for data in ws:
            session.last_seen = loop.time()
            frame = self._decode(data)
            if isinstance(frame, Ping):
                await ws.send(_PONG)
            elif isinstance(frame, Ack):
                self._on_ack(session, frame.mid)
            else:
                raise _Closed(CloseCode.BAD_FRAME, "HELLO was already received")

    def _decode(self, data: Any) -> frames.ClientFrame:
        if isinstance(data, str):
            raise _Closed(CloseCode.UNSUPPORTED_DATA, "frames are binary messages")
        metrics.BYTES_IN.inc(len(data))
        try:
            return frames.decode_client(data)
        except DecodeError as err:
            raise _Closed(CloseCode.BAD_FRAME, err.reason[:120]) from None

    def _on_ack(self, session: Session, msg_id: str) -> None:
        task_id = session.take_ack(msg_id)
        metrics.ACKS.labels(str(task_id is not None).lower()).inc()
        if task_id is None:
            return
        held = session.held
        event = Event(stage=Stage.DELIVERED, task_id=task_id, app_id=held.app_id, msg_id=msg_id,
                      registration_id=held.registration_id, channel=Channel.ONLINE,
                      node=self.node, ts_ms=now_ms())
        log.info("delivered", app_id=held.app_id, task_id=task_id, msg_id=msg_id,
                 registration_id=held.registration_id)
        self._spawn(self._emit(event))

    async def _emit(self, event: Event) -> None:
        try:
            stored = await self._bus.publish(topics.EVENTS, encode_event(event),
                                             key=event.task_id.encode())
            await stored
        except Exception:
            metrics.EVENT_ERRORS.inc()
            log.exception("event lost", task_id=event.task_id, stage=event.stage)

    async def _forget(self, session: Session) -> None:
        current = self._sessions.get(session.device)
        if current is not None and current[0] is session:
            del self._sessions[session.device]
            metrics.CONNECTIONS.set(len(self._sessions))
        await self._store.drop_presence(session.held)

    # Background work

    async def _read_inbox(self, after: bytes) -> None:
        while True:
            entries = await self._store.read_inbox(self.node, after, block_ms=1000, count=256)
            for entry_id, raw in entries:
                after = entry_id
                try:
                    delivery = decode_node_delivery(raw)
                except DecodeError as err:
                    log.error("bad inbox entry", entry=entry_id.decode(), reason=err.reason)
                    continue
                for rid in delivery.registration_ids:
                    await self._write_push(delivery.app_id, rid, delivery.task_id,
                                           delivery.msg_id, delivery.frame)

    async def _write_push(self, app_id: str, rid: str, task_id: str, msg_id: str,
                          frame: bytes) -> None:
        entry = self._sessions.get((app_id, rid))
        if entry is None:
            metrics.PUSHES.labels("not_connected").inc()
            log.info("push for a device not here", app_id=app_id, task_id=task_id,
                     registration_id=rid)
            return
        session, ws = entry
        if ws.transport.get_write_buffer_size() > self.settings.max_write_buffer:
            metrics.PUSHES.labels("slow_reader").inc()
            log.warning("slow reader disconnected", app_id=app_id, registration_id=rid)
            self._spawn(ws.close(CloseCode.GOING_AWAY, "slow reader"))
            return
        session.expect_ack(msg_id, task_id)
        try:
            await ws.send(frame)
        except ConnectionClosed:
            metrics.PUSHES.labels("closed").inc()
            return
        metrics.PUSHES.labels("written").inc()
        metrics.BYTES_OUT.inc(len(frame))

    async def _sweep(self) -> None:
        """Close silent connections and refresh the presence of the others, in batches."""
        interval = keys.PRESENCE_TTL_S / 3
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            deadline = loop.time() - self.settings.heartbeat_timeout_s
            alive: list[tuple[Session, ServerConnection]] = []
            for session, ws in list(self._sessions.values()):
                if session.last_seen < deadline:
                    self._spawn(ws.close(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout"))
                else:
                    alive.append((session, ws))
            for start in range(0, len(alive), _REFRESH_CHUNK):
                chunk = alive[start:start + _REFRESH_CHUNK]
                kept = await self._store.refresh_presence([s.held for s, _ in chunk],
                                                          keys.PRESENCE_TTL_S)
                for (session, ws), ok in zip(chunk, kept, strict=True):
                    if not ok:
                        log.info("presence taken by a newer connection",
                                 app_id=session.held.app_id,
                                 registration_id=session.held.registration_id)
                        self._spawn(ws.close(CloseCode.NORMAL, "replaced"))
