"""A small HTTP/2 client for the vendors whose API is HTTP/2 (APNs, FCM): the ``h2`` state
machine inside an ``asyncio.Protocol``, TLS done by the event loop, one connection per origin.

httpx spent about half of a sender's CPU around each request (request and response models,
a cookie jar, an anyio cancel scope, a Python-level TLS stream, three socket writes); here a
request costs h2's own framing, one future and its share of one ``transport.write``: requests
started in the same loop iteration go out in a single write, HEADERS and DATA(END_STREAM) of
each together.

Behaviour:

- Connects on the first request, offering only ``h2`` by ALPN (a server that picks anything
  else fails with a ``TransientError`` saying so), and sends nothing before the server's
  SETTINGS: APNs grants a single stream until it has seen a valid token.
- At most ``max_streams`` streams, fewer when the server's SETTINGS_MAX_CONCURRENT_STREAMS
  says so (followed as it changes); requests beyond wait their turn in order, without a
  deadline, as they would on a semaphore.
- Flow control: a body larger than the send window waits for WINDOW_UPDATE; received data is
  acknowledged as it arrives, so the server's window never runs dry.
- GOAWAY: streams up to the last stream id it names finish; higher ones fail with
  ``TransientError`` (the server did not process them, so a retry is safe); new requests go
  to a new connection, and the old one is closed once its streams are done.
- A lost connection fails its streams with ``TransientError``; RST_STREAM fails that stream.
- Timeouts: one sweep per connection, several times per ``timeout_s``, resets and fails with
  ``TransientError`` the streams open longer than ``timeout_s``: no timer per request.
- A connection without streams for ``keepalive_s`` is closed.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections import deque
from collections.abc import Collection, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack
import httpx
from h2.errors import ErrorCodes

from vendors.errors import RejectedError, TransientError
from vendors.http import check_status

#: How long a connection without streams stays open: APNs asks providers to keep theirs.
KEEPALIVE_S = 600.0
#: Our receive window, per stream and for the connection. Answers are small; a wide window
#: means the server never waits for our WINDOW_UPDATE.
RECEIVE_WINDOW = 2**24
#: h2's window before our SETTINGS apply (RFC 9113's initial 65,535 octets).
_DEFAULT_WINDOW = 65_535
#: Tries of a request whose connection closed before its stream was opened.
_ATTEMPTS = 3
#: h2's outbound header validation runs lazily inside HPACK encoding: a header it refuses
#: would leave the encoder's table changed for a block never sent, breaking the connection.
#: Headers are checked here instead, before h2 sees them.
_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+\Z")
_BAD_VALUE = re.compile(r"[\x00\r\n]|\A[ \t]|[ \t]\Z")
_CONFIG = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                    validate_outbound_headers=False,
                                    normalize_outbound_headers=False)


@dataclass(frozen=True, slots=True)
class Response:
    """A whole answer: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes


class _NotStarted(Exception):
    """The connection went away before the request's stream was opened: try another."""


class H2Client:
    """Requests to one origin (``base_url``, whose path prefixes every request's) over one
    HTTP/2 connection at a time; ``verify`` as httpx takes it (an ``SSLContext``, or whether to
    check the certificate against certifi's roots)."""

    def __init__(self, base_url: str, *, timeout_s: float,
                 verify: ssl.SSLContext | bool = True, max_streams: int = 1000,
                 keepalive_s: float = KEEPALIVE_S) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if tls else 80)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._prefix = parts.path.rstrip("/")
        self._pseudo = ((b":scheme", parts.scheme.encode()), (b":authority", parts.netloc.encode()))
        # h2c (prior knowledge) without TLS, for a local server; vendors are all https.
        self._ssl = httpx.create_ssl_context(verify=verify) if tls else None
        self._timeout_s = timeout_s
        self._max_streams = max_streams
        self._keepalive_s = keepalive_s
        self._current: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None
        self._live: set[_Connection] = set()
        self._closed = False

    @property
    def in_flight(self) -> int:
        """Requests holding or awaiting a stream, over every connection still open."""
        return sum(connection.in_flight for connection in self._live)

    async def request(self, method: str, path: str, headers: Mapping[str, str],
                      body: bytes = b"", *, unique: Collection[str] = ()) -> Response:
        """Send one request, return its answer whatever the status.

        ``unique`` names the headers (``:path`` among them) whose value is new with every
        request: HPACK would add each to its table, evicting the values worth keeping there
        and making every later lookup longer, so they are sent unindexed.

        ``TransientError`` when the transport fails (connect, TLS, timeout, reset, GOAWAY),
        ``RejectedError`` for a header HTTP/2 cannot carry (nothing is sent).
        """
        target = (self._prefix + path).encode()
        block: list[tuple[bytes, bytes]] = [
            (b":method", method.encode()), *self._pseudo,
            hpack.NeverIndexedHeaderTuple(b":path", target) if ":path" in unique
            else (b":path", target)]
        for name, value in headers.items():
            if not _NAME.match(name) or _BAD_VALUE.search(value):
                raise RejectedError(f"header {name[:64]!r} has characters HTTP/2 forbids")
            pair = (name.encode(), value.encode())
            block.append(hpack.NeverIndexedHeaderTuple(*pair) if name in unique else pair)
        if body:
            block.append((b"content-length", str(len(body)).encode()))
        for _ in range(_ATTEMPTS):
            connection = self._current
            if connection is None or not connection.usable:
                connection = await self._connect()
            try:
                return await connection.request(block, body)
            except _NotStarted:
                continue
        raise TransientError(f"connections to {self._origin} kept closing before the request "
                             "could be sent")

    async def call(self, method: str, path: str, headers: Mapping[str, str],
                   body: bytes = b"", *, unique: Collection[str] = ()) -> Response:
        """``request``, then ``vendors.http.check_status``: 429 raises ``RateLimitedError``,
        5xx ``TransientError``; any other answer is returned."""
        response = await self.request(method, path, headers, body, unique=unique)
        check_status(response.status, response.headers, path)
        return response

    async def close(self) -> None:
        """Fail whatever is in flight, close every connection."""
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        await asyncio.gather(*(connection.close() for connection in list(self._live)))
        self._current = None

    async def _connect(self) -> _Connection:
        if self._closed:
            raise TransientError(f"client for {self._origin} is closed")
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
            self._connecting.add_done_callback(self._opened)
        # Shielded: one request giving up must not abort the connect the others wait for.
        return await asyncio.shield(self._connecting)

    def _opened(self, task: asyncio.Task[_Connection]) -> None:
        self._connecting = None
        if not task.cancelled() and task.exception() is None:
            self._current = task.result()

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        if self._ssl is not None:
            # Set at every connect: httpx sets its own list on a context it shares with us.
            self._ssl.set_alpn_protocols(["h2"])
        connection = _Connection(self._origin, self._timeout_s, self._keepalive_s,
                                 self._max_streams, self._live)
        try:
            async with asyncio.timeout(self._timeout_s):
                await loop.create_connection(
                    lambda: connection, self._host, self._port, ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None)
                await connection.ready
        except TimeoutError:
            connection.abort()
            raise TransientError(f"ConnectTimeout: no HTTP/2 connection to {self._origin} "
                                 f"within {self._timeout_s}s") from None
        except OSError as exc:
            connection.abort()
            raise TransientError(f"ConnectError: {self._origin}: {exc}") from None
        except BaseException:
            connection.abort()
            raise
        return connection


class _PlainEncoder(hpack.Encoder):
    """HPACK without Huffman coding: hpack's Huffman coder is pure Python, a tenth of a
    sender's CPU, to save about a fifth of the bytes of header values (tokens, ids, paths)
    that go once each over one long-lived connection."""

    def encode(self, headers: Any, huffman: bool = False) -> bytes:
        """See ``hpack.Encoder.encode``; never Huffman-coded."""
        return super().encode(headers, huffman=False)


class _H2State(h2.connection.H2Connection):
    """h2's connection, but for how it counts open streams: h2 walks every stream it holds on
    each ``send_headers`` (a quarter of the client's CPU with hundreds in flight). The count is
    the client's own streams instead, and h2's walk, which also forgets closed streams, runs
    once per sweep (``forget_closed``)."""

    def __init__(self, streams: dict[int, _Stream]) -> None:
        super().__init__(_CONFIG)
        self.counted = streams
        self.encoder = _PlainEncoder()

    @property
    def open_outbound_streams(self) -> int:
        """The streams the client has open."""
        return len(self.counted)

    def forget_closed(self) -> None:
        """Let h2 drop the streams that closed since the last call."""
        h2.connection.H2Connection.open_outbound_streams.fget(self)  # type: ignore[attr-defined]


class _Stream:
    __slots__ = ("body", "future", "headers", "id", "pending", "started", "status")

    def __init__(self, stream_id: int, future: asyncio.Future[Response], started: float) -> None:
        self.id = stream_id
        self.future = future
        self.started = started
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self.pending = b""


class _Connection(asyncio.Protocol):
    """One HTTP/2 connection: h2's state, its streams and the requests waiting for one."""

    def __init__(self, origin: str, timeout_s: float, keepalive_s: float, max_streams: int,
                 live: set[_Connection]) -> None:
        self._loop = asyncio.get_running_loop()
        self._origin = origin
        self._timeout_s = timeout_s
        self._keepalive_s = keepalive_s
        self._cap = max_streams
        self._limit = max_streams
        self._live = live
        self._transport: asyncio.Transport | None = None
        self._streams: dict[int, _Stream] = {}
        self._h2 = _H2State(self._streams)
        self._blocked: dict[int, _Stream] = {}
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._active = 0
        self._flush_due = False
        self._goaway = False
        self._closed = False
        self._idle_since = self._loop.time()
        self._sweeper: asyncio.TimerHandle | None = None
        self.ready: asyncio.Future[None] = self._loop.create_future()
        self.lost: asyncio.Future[None] = self._loop.create_future()
        self._dispatch = {
            h2.events.ResponseReceived: self._on_response,
            h2.events.DataReceived: self._on_data,
            h2.events.StreamEnded: self._on_end,
            h2.events.StreamReset: self._on_reset,
            h2.events.WindowUpdated: self._on_window,
            h2.events.RemoteSettingsChanged: self._on_settings,
            h2.events.ConnectionTerminated: self._on_goaway,
        }

    @property
    def usable(self) -> bool:
        """Whether new streams may be opened here."""
        return not self._closed and not self._goaway

    @property
    def in_flight(self) -> int:
        """Streams open and requests waiting for one."""
        return len(self._streams) + len(self._waiters)

    # --- requests -------------------------------------------------------------------------

    async def request(self, block: list[tuple[bytes, bytes]], body: bytes) -> Response:
        """Send on a new stream once one is free; the answer, or the stream's failure."""
        await self._acquire()
        if not self.usable:
            self._release()
            raise _NotStarted
        stream_id = self._h2.get_next_available_stream_id()
        stream = _Stream(stream_id, self._loop.create_future(), self._loop.time())
        self._h2.send_headers(stream_id, block, end_stream=not body)
        self._streams[stream_id] = stream
        if body:
            stream.pending = body
            self._send_body(stream)
        self._schedule_flush()
        try:
            return await stream.future
        except asyncio.CancelledError:
            if stream_id in self._streams:
                self._reset(stream)
                self._end(stream)
            raise

    async def _acquire(self) -> None:
        if self._active < self._limit and not self._waiters:
            self._active += 1
            return
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            # The slot was handed over just before the cancellation: pass it on.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release()
            raise

    def _release(self) -> None:
        if self.usable and self._active <= self._limit:
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the slot passes on
                    return
        self._active -= 1

    def _grow(self) -> None:
        while self._active < self._limit and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._active += 1
                waiter.set_result(None)

    def _send_body(self, stream: _Stream) -> None:
        data = stream.pending
        while data:
            size = min(len(data), self._h2.local_flow_control_window(stream.id),
                       self._h2.max_outbound_frame_size)
            if size <= 0:
                break
            self._h2.send_data(stream.id, data[:size], end_stream=size == len(data))
            data = data[size:]
        stream.pending = data
        if data:
            self._blocked[stream.id] = stream
        else:
            self._blocked.pop(stream.id, None)

    def _end(self, stream: _Stream, error: BaseException | None = None) -> None:
        """Forget the stream and settle its request (``error``, else its answer)."""
        if self._streams.pop(stream.id, None) is None:
            return
        self._blocked.pop(stream.id, None)
        if not stream.future.done():
            if error is not None:
                stream.future.set_exception(error)
            else:
                stream.future.set_result(Response(stream.status, stream.headers,
                                                  bytes(stream.body)))
        self._release()
        if not self._streams:
            self._idle_since = self._loop.time()
            if self._goaway and self._transport is not None:
                self._transport.close()

    def _reset(self, stream: _Stream) -> None:
        with suppress(h2.exceptions.ProtocolError):
            self._h2.reset_stream(stream.id, ErrorCodes.CANCEL)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_due:
            self._flush_due = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        data = self._h2.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """TLS is up: check ALPN, send our preface and SETTINGS, start the sweep."""
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._live.add(self)
        ssl_object = self._transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            chosen = ssl_object.selected_alpn_protocol()
            if chosen != "h2":
                self._fail_ready(TransientError(
                    f"{self._origin} does not speak HTTP/2: ALPN chose {chosen or 'nothing'}, "
                    "h2 was the only protocol offered"))
                transport.abort()
                return
        self._h2.local_settings = h2.settings.Settings(client=True, initial_values={
            h2.settings.SettingCodes.ENABLE_PUSH: 0,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: RECEIVE_WINDOW,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 65_536})
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(RECEIVE_WINDOW - _DEFAULT_WINDOW)
        self._flush()
        self._sweeper = self._loop.call_later(self._sweep_every, self._sweep)

    def data_received(self, data: bytes) -> None:
        """Feed h2, act on its events, write what they made h2 send (acks, window updates)."""
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._fail_ready(TransientError(f"{self._origin} does not speak HTTP/2: {exc}"))
            self._fail_all(TransientError(f"RemoteProtocolError: {self._origin}: {exc}"))
            self.abort()
            return
        for event in events:
            handler = self._dispatch.get(type(event))
            if handler is not None:
                handler(event)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail every stream; requests still waiting for one try a new connection."""
        self._closed = True
        self._live.discard(self)
        if self._sweeper is not None:
            self._sweeper.cancel()
        reason = f": {exc}" if exc else ""
        self._fail_ready(TransientError(f"ConnectError: {self._origin} closed the connection "
                                        f"during the HTTP/2 handshake{reason}"))
        self._fail_all(TransientError(f"connection to {self._origin} lost{reason}"))
        if not self.lost.done():
            self.lost.set_result(None)

    # --- h2 events ------------------------------------------------------------------------

    def _on_response(self, event: h2.events.ResponseReceived) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is None:
            return
        for name, value in event.headers:
            if name == b":status":
                stream.status = int(value)
            else:
                stream.headers[name.decode("latin-1")] = value.decode("latin-1")

    def _on_data(self, event: h2.events.DataReceived) -> None:
        self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        stream = self._streams.get(event.stream_id)
        if stream is not None:
            stream.body += event.data

    def _on_end(self, event: h2.events.StreamEnded) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is not None:
            self._end(stream)

    def _on_reset(self, event: h2.events.StreamReset) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is not None:
            code = getattr(event.error_code, "name", event.error_code)
            self._end(stream, TransientError(f"stream reset by {self._origin}: {code}"))

    def _on_window(self, event: h2.events.WindowUpdated) -> None:
        if event.stream_id == 0:
            for stream in list(self._blocked.values()):
                self._send_body(stream)
        elif (stream := self._blocked.get(event.stream_id)) is not None:
            self._send_body(stream)

    def _on_settings(self, event: h2.events.RemoteSettingsChanged) -> None:
        codes = h2.settings.SettingCodes
        changed = event.changed_settings
        if codes.MAX_CONCURRENT_STREAMS in changed:
            self._limit = min(self._cap, changed[codes.MAX_CONCURRENT_STREAMS].new_value)
            self._grow()
        if codes.INITIAL_WINDOW_SIZE in changed:
            for stream in list(self._blocked.values()):
                self._send_body(stream)
        if not self.ready.done():
            self.ready.set_result(None)

    def _on_goaway(self, event: h2.events.ConnectionTerminated) -> None:
        self._goaway = True
        # h2 closes its state machine on GOAWAY and would refuse the frames of the streams the
        # server still answers (python-hyper/h2#1181); no stream is opened here any more.
        self._h2.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        last = event.last_stream_id if event.last_stream_id is not None else 0
        code = getattr(event.error_code, "name", event.error_code)
        self._fail_ready(TransientError(f"GOAWAY from {self._origin} during the handshake: "
                                        f"{code}"))
        self._fail_waiters()
        error = TransientError(f"GOAWAY from {self._origin} ({code}): stream not processed")
        for stream in [s for stream_id, s in self._streams.items() if stream_id > last]:
            self._end(stream, error)
        if not self._streams and self._transport is not None:
            self._transport.close()

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def _sweep_every(self) -> float:
        return max(0.02, min(1.0, self._timeout_s / 4))

    def _sweep(self) -> None:
        """Fail streams open longer than the timeout; close the connection when idle long."""
        now = self._loop.time()
        deadline = now - self._timeout_s
        expired = []
        for stream in self._streams.values():  # oldest first: ids grow with time
            if stream.started > deadline:
                break
            expired.append(stream)
        for stream in expired:
            self._reset(stream)
            self._end(stream, TransientError(
                f"ReadTimeout: no answer from {self._origin} within {self._timeout_s}s"))
        self._h2.forget_closed()
        if (self.usable and not self._streams and not self._waiters
                and now - self._idle_since >= self._keepalive_s):
            self._goaway = True
            self._h2.close_connection()
            self._flush()
            if self._transport is not None:
                self._transport.close()
            return
        self._sweeper = self._loop.call_later(self._sweep_every, self._sweep)

    def _fail_ready(self, error: TransientError) -> None:
        if not self.ready.done():
            self.ready.set_exception(error)
            self.ready.exception()  # retrieved here: nobody may be waiting any more

    def _fail_waiters(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(_NotStarted())

    def _fail_all(self, error: TransientError) -> None:
        """No new streams here; waiting requests try another connection, open ones fail."""
        self._goaway = True
        self._fail_waiters()
        for stream in list(self._streams.values()):
            self._end(stream, error)

    def abort(self) -> None:
        """Drop the transport at once (a connect that failed or timed out)."""
        if self._transport is not None:
            self._transport.abort()

    async def close(self) -> None:
        """Say GOAWAY, fail the streams, close; abort if the close does not finish in time."""
        if self._transport is None:
            return
        with suppress(h2.exceptions.ProtocolError):
            self._h2.close_connection()
        self._flush()
        self._fail_all(TransientError(f"client for {self._origin} closed"))
        self._transport.close()
        await asyncio.wait([self.lost], timeout=self._timeout_s)
        if not self.lost.done():
            self._transport.abort()
