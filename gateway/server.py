"""The gateway node: accepts devices, keeps presence fresh, writes its inbox to sockets, and
sends back down the offline path what devices did not acknowledge."""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Coroutine
from typing import Any

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from gateway import metrics
from gateway.auth import Authenticator, AuthFailed, observe
from gateway.connection import InlineConnection, connection_class
from gateway.link import Link, LinkClosed, SlowReader
from gateway.outflow import Outflow
from gateway.session import Pending, Session
from herald.backoff import Backoff
from herald.bus import Bus
from herald.settings import GatewaySettings
from herald.store import Held, Store
from proto import frames, keys
from proto.envelopes import (
    NodeDelivery,
    NodeKick,
    NodeRecall,
    decode_node_entry,
    encode_internal,
)
from proto.errors import DecodeError
from proto.events import Channel, Event, Reason, Stage, now_ms
from proto.frames import (
    Ack,
    Bind,
    Bound,
    Bye,
    ByeReason,
    Click,
    CloseCode,
    Hello,
    Ping,
    Pong,
    Recall,
    Register,
    Welcome,
)

log = structlog.get_logger()

_PONG = frames.encode(Pong())
#: Presence refreshes per pipeline, so one sweep never builds a giant Redis request.
_REFRESH_CHUNK = 2000
#: Reconnect delay window handed to clients when the node drains.
_DRAIN_RETRY_MS = (500, 5000)
#: REGISTER frames one connection may send before HELLO.
_MAX_REGISTERS = 2


class _Close(Exception):
    """The connection must close with ``code`` and ``reason``."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _Conn:
    """A session and the link it writes through."""

    __slots__ = ("close_reason", "link", "session")

    def __init__(self, session: Session, link: Link) -> None:
        self.session = session
        self.link = link
        self.close_reason = Reason.CLOSED


class Gateway:
    """One gateway node: a websocket server plus its background loops."""

    def __init__(self, settings: GatewaySettings, store: Store, bus: Bus) -> None:
        self.settings = settings
        self.node = settings.node_id
        self._store = store
        self._auth = Authenticator(store, token_ttl_s=settings.token_ttl_s)
        self._outflow = Outflow(bus, self.node)
        self._conns: dict[tuple[str, str], _Conn] = {}
        self._deadlines: deque[tuple[float, _Conn, str]] = deque()
        self._server: Server | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._spawned: set[asyncio.Task[None]] = set()
        self._draining = False
        self._backoff = Backoff(base_s=0.05, cap_s=2.0)
        self._connection = connection_class(self._settle)

    @property
    def connected(self) -> int:
        """Devices connected to this node."""
        return len(self._conns)

    async def start(self) -> None:
        """Start the background loops, then accept connections."""
        await self._store.node_beat(self.node, keys.NODE_ALIVE_TTL_MS)
        after = await self._store.inbox_tail(self.node)
        loop = asyncio.get_running_loop()
        for coro in (self._read_inbox(after), self._sweep(), self._expire_acks(),
                     self._beat(), self._outflow.run()):
            task = loop.create_task(coro)
            task.add_done_callback(self._watch)
            self._loops.append(task)
        self._server = await serve(
            self._handle, self.settings.host, self.settings.port,
            create_connection=self._connection,
            subprotocols=[frames.SUBPROTOCOL], max_size=self.settings.max_frame_bytes,
            compression="deflate" if self.settings.compression else None, ping_interval=None,
            open_timeout=self.settings.hello_timeout_s,
            write_limit=(4 * self.settings.write_low_water, self.settings.write_low_water),
            # asyncio's default backlog of 100 drops connects in a reconnect storm.
            backlog=self.settings.listen_backlog,
        )
        log.info("gateway listening", host=self.settings.host, port=self.settings.port)

    def _watch(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background loop died; stopping the node", exc_info=task.exception())
            if self._server is not None:
                self._server.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run short work (a close, a store write) without waiting, but keep and check it."""
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
        """Stop accepting; tell every client to reconnect elsewhere (with jitter) and close;
        keep reading the inbox for the grace period so that pushes routed here meanwhile go
        back down the offline path; then stop."""
        if self._server is None:
            return
        self._draining = True
        self._server.close(close_connections=False)
        conns = list(self._conns.values())
        for conn in conns:
            bye = Bye(ByeReason.SHUTDOWN, retry_ms=random.randint(*_DRAIN_RETRY_MS))
            try:
                conn.link.write(frames.encode(bye))
            except LinkClosed:
                continue
        await asyncio.gather(*(c.link.ws.close(CloseCode.GOING_AWAY, ByeReason.SHUTDOWN)
                               for c in conns), return_exceptions=True)
        await self._server.wait_closed()
        await asyncio.sleep(self.settings.drain_grace_s)
        await self._store.node_gone(self.node)
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        await asyncio.gather(*self._spawned, return_exceptions=True)

    # Connections

    async def _handle(self, ws: InlineConnection) -> None:
        try:
            conn = await self._open(ws)
        except _Close as close:
            metrics.DISCONNECTS.labels(close.code.name.lower()).inc()
            await ws.close(close.code, close.reason)
            return
        except ConnectionClosed:
            metrics.DISCONNECTS.labels("before_hello").inc()
            return
        reason = "client_closed"
        ws.settle_with(conn)
        try:
            await self._converse(ws, conn)
        except _Close as close:
            reason = close.code.name.lower()
            await ws.close(close.code, close.reason)
        except ConnectionClosed:
            pass
        finally:
            ws.settle_with(None)
            if conn.close_reason != Reason.CLOSED:
                reason = conn.close_reason
            await self._forget(conn)
            metrics.DISCONNECTS.labels(reason).inc()

    async def _open(self, ws: ServerConnection) -> _Conn:
        try:
            async with asyncio.timeout(self.settings.hello_timeout_s):
                hello = await self._await_hello(ws)
            await self._auth.hello(hello)
        except TimeoutError:
            raise _Close(CloseCode.HELLO_EXPECTED, "no HELLO in time") from None
        except AuthFailed as failed:
            metrics.AUTH_FAILURES.labels(failed.kind).inc()
            log.info("auth refused", app_id=hello.app, registration_id=hello.rid,
                     reason=failed.kind)
            raise _Close(CloseCode.AUTH_FAILED, failed.reason) from None
        epoch, previous = await self._store.connect_device(hello.app, hello.rid, self.node,
                                                           keys.PRESENCE_TTL_S)
        held = Held(hello.app, hello.rid, self.node, epoch)
        loop = asyncio.get_running_loop()
        session = Session(held, loop.time(), rate=self.settings.client_rate,
                          burst=self.settings.client_burst, max_pending=self.settings.max_pending)
        conn = _Conn(session, Link(ws, low_water=self.settings.write_low_water,
                                   max_queue=self.settings.max_queue))
        replaced = self._conns.get(session.device)
        self._conns[session.device] = conn
        metrics.CONNECTS.inc()
        metrics.CONNECTIONS.set(len(self._conns))
        if replaced is not None:
            self._replace(replaced)
        elif previous is not None and previous.node != self.node:
            kick = NodeKick(hello.app, hello.rid, epoch)
            self._spawn(self._store.send_to_nodes([(previous.node, encode_internal(kick))]))
        conn.link.write(frames.encode(Welcome(epoch=epoch, hb=self.settings.heartbeat_s,
                                              node=self.node)))
        self._spawn(observe(self._store, hello.app, hello.rid))
        log.info("device connected", app_id=hello.app, registration_id=hello.rid, epoch=epoch)
        await self._drain_offline_inbox(conn)
        return conn

    async def _await_hello(self, ws: ServerConnection) -> Hello:
        registers = 0
        while True:
            frame = self._decode(await ws.recv())
            if isinstance(frame, Hello):
                if frame.v != frames.PROTOCOL_VERSION:
                    raise _Close(CloseCode.UNSUPPORTED_VERSION,
                                 f"protocol version {frames.PROTOCOL_VERSION} only")
                return frame
            if not isinstance(frame, Register):
                raise _Close(CloseCode.HELLO_EXPECTED, "the first frame must be REGISTER or HELLO")
            registers += 1
            if registers > _MAX_REGISTERS:
                raise _Close(CloseCode.HELLO_EXPECTED, "too many REGISTER frames")
            try:
                registered = await self._auth.register(frame)
            except AuthFailed as failed:
                metrics.AUTH_FAILURES.labels(failed.kind).inc()
                raise _Close(CloseCode.AUTH_FAILED, failed.reason) from None
            metrics.REGISTRATIONS.inc()
            log.info("device registered", app_id=frame.app, registration_id=registered.rid)
            await ws.send(frames.encode(registered))

    async def _drain_offline_inbox(self, conn: _Conn) -> None:
        held = conn.session.held
        stored = await self._store.inbox_read(held.app_id, held.registration_id)
        deadline = asyncio.get_running_loop().time() + self.settings.ack_timeout_s
        for item in stored:
            pending = Pending(task_id=item.msg_id, msg_id=item.msg_id, frame=item.frame,
                              push_flag=1, expires_at_ms=0, from_inbox=True, deadline=deadline)
            if self._write(conn, pending):
                self._sent(held.app_id, pending, [held.registration_id])
        metrics.INBOX_DEPTH.observe(len(stored))

    def _replace(self, old: _Conn) -> None:
        old.close_reason = Reason.CLOSED
        try:
            old.link.write(frames.encode(Bye(ByeReason.REPLACED)))
        except LinkClosed:
            return
        self._spawn(old.link.ws.close(CloseCode.REPLACED, "replaced by a newer connection"))

    async def _converse(self, ws: ServerConnection, conn: _Conn) -> None:
        # The frames ``_settle`` does not take inline: those it takes never reach this loop,
        # and none is settled while this loop has a frame to finish (a BIND awaiting the
        # store), so a device's frames take effect in the order it sent them.
        loop = asyncio.get_running_loop()
        session = conn.session
        async for data in ws:
            now = loop.time()
            session.last_seen = now
            frame = self._decode(data)
            # An ACK answers a push, so only ACKs that match nothing spend the frame budget:
            # a device draining a full inbox must be able to ack it at once.
            matched = isinstance(frame, Ack) and self._on_ack(session, frame.mid)
            if not matched and not session.allow_frame(now):
                raise _Close(CloseCode.RATE_LIMITED, "too many frames")
            if matched or isinstance(frame, Ack):
                continue
            if isinstance(frame, Ping):
                conn.link.write(_PONG)
            elif isinstance(frame, Click):
                self._on_click(session, frame.mid)
            elif isinstance(frame, Bind):
                held = session.held
                await self._store.bind_account(held.app_id, held.registration_id, frame.account)
                conn.link.write(frames.encode(Bound(frame.account)))
            else:
                raise _Close(CloseCode.BAD_FRAME, "HELLO was already received")

    def _settle(self, conn: _Conn, data: bytes) -> bool:
        """Settle an ACK or answer a PING in the connection's event callback, as ``_converse``
        would; False, having changed nothing, leaves the frame to ``_converse`` (any other
        frame, a bad one, or one over the budget, which closes the connection there)."""
        try:
            frame = frames.decode_client(data)
        except DecodeError:
            return False
        session = conn.session
        if isinstance(frame, Ack):
            # Only ACKs that match nothing spend the budget (see _converse).
            spend = frame.mid not in session.pending
        elif isinstance(frame, Ping):
            spend = True
        else:
            return False
        now = asyncio.get_running_loop().time()
        # A refused allow_frame() changes nothing that a later call would not recompute, so
        # _converse asks again and closes the connection with RATE_LIMITED.
        if spend and not session.allow_frame(now):
            return False
        session.last_seen = now
        metrics.BYTES_IN.inc(len(data))
        if isinstance(frame, Ack):
            self._on_ack(session, frame.mid)
            return True
        try:
            conn.link.write(_PONG)
        except SlowReader:
            conn.close_reason = Reason.SLOW_READER
            conn.link.abort()
        except LinkClosed:
            pass
        return True

    def _decode(self, data: Any) -> frames.ClientFrame:
        if isinstance(data, str):
            raise _Close(CloseCode.UNSUPPORTED_DATA, "frames are binary messages")
        metrics.BYTES_IN.inc(len(data))
        try:
            return frames.decode_client(data)
        except DecodeError as err:
            raise _Close(CloseCode.BAD_FRAME, err.reason[:120]) from None

    def _on_ack(self, session: Session, msg_id: str) -> bool:
        """Settle a pending push; False if the ACK matched none."""
        pending = session.take_ack(msg_id)
        (metrics.ACKS_MATCHED if pending is not None else metrics.ACKS_UNMATCHED).inc()
        if pending is None:
            return False
        held = session.held
        if pending.from_inbox:
            self._spawn(self._store.inbox_remove(held.app_id, held.registration_id, [msg_id]))
        self._outflow.emit(Event(stage=Stage.DELIVERED, task_id=pending.task_id,
                                 app_id=held.app_id, msg_id=msg_id,
                                 registration_id=held.registration_id, channel=Channel.ONLINE,
                                 node=self.node, ts_ms=now_ms()))
        log.debug("delivered", app_id=held.app_id, task_id=pending.task_id, msg_id=msg_id,
                  registration_id=held.registration_id)
        return True

    def _on_click(self, session: Session, msg_id: str) -> None:
        metrics.CLICKS.inc()
        held = session.held
        # In protocol v1 a message id is its task id (see proto/PROTOCOL.md).
        self._outflow.emit(Event(stage=Stage.CLICKED, task_id=msg_id, app_id=held.app_id,
                                 msg_id=msg_id, registration_id=held.registration_id,
                                 channel=Channel.ONLINE, node=self.node, ts_ms=now_ms()))

    async def _forget(self, conn: _Conn) -> None:
        session = conn.session
        if self._conns.get(session.device) is conn:
            del self._conns[session.device]
            metrics.CONNECTIONS.set(len(self._conns))
        conn.link.unsent()
        for pending in session.take_all():
            if not pending.from_inbox:
                self._outflow.fall_back(session.held, pending, conn.close_reason)
        await self._store.drop_presence([session.held])

    # Writing pushes

    def _sent(self, app_id: str, pending: Pending, rids: list[str]) -> None:
        self._outflow.emit(Event(stage=Stage.SENT, task_id=pending.task_id, app_id=app_id,
                                 msg_id=pending.msg_id, registration_ids=rids,
                                 channel=Channel.ONLINE, node=self.node, ts_ms=now_ms()))

    def _write(self, conn: _Conn, pending: Pending) -> bool:
        """Write one push and expect its ACK; the one place pushes reach a socket. Whether it
        was written (or queued behind a busy socket)."""
        forgotten = conn.session.expect_ack(pending)
        if forgotten is not None and not forgotten.from_inbox:
            self._outflow.fall_back(conn.session.held, forgotten, Reason.ACK_TIMEOUT)
        self._deadlines.append((pending.deadline, conn, pending.msg_id))
        try:
            conn.link.write(pending.frame)
        except SlowReader:
            metrics.PUSHES.labels("slow_reader").inc()
            conn.close_reason = Reason.SLOW_READER
            log.warning("slow reader disconnected", app_id=conn.session.held.app_id,
                        registration_id=conn.session.held.registration_id)
            conn.link.abort()
            return False
        except LinkClosed:
            metrics.PUSHES.labels("closing").inc()
            return False
        metrics.WRITTEN.inc()
        metrics.BYTES_OUT.inc(len(pending.frame))
        return True

    def _deliver(self, delivery: NodeDelivery) -> None:
        # One Pending for every device of the delivery: it is immutable and the same for all,
        # so the per-device loop allocates nothing.
        pending = Pending(task_id=delivery.task_id, msg_id=delivery.msg_id,
                          frame=delivery.frame, push_flag=delivery.push_flag,
                          expires_at_ms=delivery.expires_at_ms, from_inbox=delivery.in_inbox,
                          deadline=asyncio.get_running_loop().time() + self.settings.ack_timeout_s)
        expired = delivery.expires_at_ms and delivery.expires_at_ms < now_ms()
        written: list[str] = []
        for rid in delivery.registration_ids:
            conn = self._conns.get((delivery.app_id, rid))
            if conn is not None and not expired:
                if self._write(conn, pending):
                    written.append(rid)
                continue
            metrics.PUSHES.labels("expired" if expired else "not_connected").inc()
            if not delivery.in_inbox:
                self._outflow.fall_back(Held(delivery.app_id, rid, self.node, 0), pending,
                                        Reason.EXPIRED if expired else Reason.CLOSED)
        if written:
            self._sent(delivery.app_id, pending, written)

    def _kick(self, kick: NodeKick) -> None:
        conn = self._conns.get((kick.app_id, kick.registration_id))
        if conn is not None and conn.session.held.epoch < kick.epoch:
            self._replace(conn)

    def _recall(self, recall: NodeRecall) -> None:
        frame = frames.encode(Recall(recall.msg_id))
        told = []
        for rid in recall.registration_ids:
            conn = self._conns.get((recall.app_id, rid))
            if conn is not None:
                conn.session.take_ack(recall.msg_id)
                try:
                    conn.link.write(frame)
                except LinkClosed:
                    continue
                told.append(rid)
        if told:
            # The message id is its task's id.
            self._outflow.emit(Event(stage=Stage.RECALLED, task_id=recall.msg_id,
                                     app_id=recall.app_id, msg_id=recall.msg_id,
                                     registration_ids=told, channel=Channel.ONLINE,
                                     node=self.node, ts_ms=now_ms()))

    # Background loops

    async def _read_inbox(self, after: bytes) -> None:
        failures = 0
        while True:
            try:
                entries = await self._store.read_inbox(self.node, after, block_ms=1000,
                                                       count=256)
                failures = 0
            except Exception:
                # Redis restarting or a reset connection: wait and read on from the same id.
                failures += 1
                log.exception("inbox read failed; retrying", attempt=failures)
                await asyncio.sleep(self._backoff.delay(failures))
                continue
            for entry_id, raw in entries:
                after = entry_id
                try:
                    entry = decode_node_entry(raw)
                except DecodeError as err:
                    log.error("bad inbox entry", entry=entry_id.decode(), reason=err.reason)
                    continue
                if isinstance(entry, NodeDelivery):
                    self._deliver(entry)
                elif isinstance(entry, NodeKick):
                    self._kick(entry)
                else:
                    self._recall(entry)
                # A reply holds up to 256 entries of a broadcast of a few hundred devices each;
                # written in one go they held the loop for seconds, and the ACKs, the other
                # connections and the liveness beat waited behind them.
                await asyncio.sleep(0)

    async def _expire_acks(self) -> None:
        """Send pushes not acknowledged in time down the offline path."""
        loop = asyncio.get_running_loop()
        interval = min(0.1, self.settings.ack_timeout_s / 4)
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            while self._deadlines and self._deadlines[0][0] <= now:
                deadline, conn, msg_id = self._deadlines.popleft()
                pending = conn.session.expire(msg_id, deadline)
                if pending is None:
                    continue
                metrics.ACK_TIMEOUTS.inc()
                if not pending.from_inbox:
                    self._outflow.fall_back(conn.session.held, pending, Reason.ACK_TIMEOUT)

    async def _beat(self) -> None:
        """Keep this node's liveness key alive, so the router trusts its presence entries.

        Renewed every sixth of its TTL (0.5 s of 3 s): a busy event loop runs the renewal
        late, and the key now lapses only if a renewal runs more than 2.5 s late (2 s when
        renewed every third). One SET per half second costs Redis nothing, and the TTL stays
        as short as the router's detection of a dead node needs."""
        while not self._draining:
            try:
                await self._store.node_beat(self.node, keys.NODE_ALIVE_TTL_MS)
            except Exception:
                log.exception("liveness beat failed; the router may treat this node as dead")
            await asyncio.sleep(keys.NODE_ALIVE_TTL_MS / 6000)

    async def _sweep(self) -> None:
        """Close silent connections and refresh the presence of the others, in batches."""
        interval = keys.PRESENCE_TTL_S / 3
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            deadline = loop.time() - self.settings.heartbeat_timeout_s
            alive: list[_Conn] = []
            for conn in list(self._conns.values()):
                if conn.session.last_seen < deadline:
                    self._spawn(conn.link.ws.close(CloseCode.HEARTBEAT_TIMEOUT,
                                                   "heartbeat timeout"))
                else:
                    alive.append(conn)
            for start in range(0, len(alive), _REFRESH_CHUNK):
                chunk = alive[start:start + _REFRESH_CHUNK]
                try:
                    kept = await self._store.refresh_presence([c.session.held for c in chunk],
                                                              keys.PRESENCE_TTL_S)
                except Exception:
                    log.exception("presence refresh failed; the next sweep tries again")
                    break
                for conn, ok in zip(chunk, kept, strict=True):
                    if not ok:
                        self._replace(conn)
