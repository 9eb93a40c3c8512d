"""The process body both local HTTP/2 vendor endpoints share (``apns_sink``, ``fcm_sink``):
h2's server state machine on an asyncio protocol over TLS, HTTP/2 only, connections that stay
open for a whole run, and the parent's commands served until it says stop.

Not hypercorn (which the tests' fake vendor servers use): once the senders' HTTP/2 client is
lean, hypercorn's per-request ASGI machinery saturated its core before the sender did
(`PROFILES.md`), and an endpoint that is the limit measures nothing of Herald's. The
endpoints keep the shape of a bare ASGI app (``answer(scope, body)``) for their checks.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, cast

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

from benchmarks.child import serve_commands
from benchmarks.sink import Slot, _Window

Headers = list[tuple[bytes, bytes]]

#: The connection's and every stream's receive window: request bodies never wait for ours.
_WINDOW = 2**24
_CONFIG = h2.config.H2Configuration(client_side=False, header_encoding=None)


class H2Endpoint:
    """Answers each request from its whole body (``answer``); counts the connections."""

    def __init__(self, counters: Any) -> None:
        self._counters = counters

    def answer(self, scope: dict[str, Any], body: bytes) -> tuple[int, Headers, bytes]:
        """Status, headers and body of the answer to one request; ``scope`` has the ASGI
        keys the endpoints read: ``method``, ``path``, ``http_version``, ``headers``."""
        raise NotImplementedError

    def connected(self) -> None:
        """A client opened a connection."""
        self._counters[Slot.CONNECTIONS] += 1


class _Server(asyncio.Protocol):
    """One client connection: h2's state, the requests being read, answers as they end."""

    def __init__(self, endpoint: H2Endpoint, streams: int, live: set[_Server]) -> None:
        self._endpoint = endpoint
        self._live = live
        self._streams = streams
        self._h2 = h2.connection.H2Connection(_CONFIG)
        self._requests: dict[int, tuple[Headers, list[bytes]]] = {}
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Refuse anything but h2, then send our SETTINGS."""
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        tls = self._transport.get_extra_info("ssl_object")
        if tls is None or tls.selected_alpn_protocol() != "h2":
            self._transport.abort()
            return
        self._endpoint.connected()
        self._live.add(self)
        self._h2.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self._streams,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _WINDOW})
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(_WINDOW - 65_535)
        self._transport.write(self._h2.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection."""
        self._live.discard(self)

    def abort(self) -> None:
        """Drop the connection (the run is over)."""
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        """Read frames; answer every request whose body is complete; one write for all."""
        assert self._transport is not None
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._transport.write(self._h2.data_to_send())
            self._transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self._requests[event.stream_id] = (list(event.headers), [])
                if event.stream_ended is not None:
                    self._answer(event.stream_id)
            elif isinstance(event, h2.events.DataReceived):
                self._h2.acknowledge_received_data(event.flow_controlled_length,
                                                   event.stream_id)
                request = self._requests.get(event.stream_id)
                if request is not None:
                    request[1].append(event.data)
                if event.stream_ended is not None:
                    self._answer(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self._requests.pop(event.stream_id, None)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self._transport.close()
        if (out := self._h2.data_to_send()):
            self._transport.write(out)

    def _answer(self, stream_id: int) -> None:
        headers, chunks = self._requests.pop(stream_id)
        pseudo = {name: value for name, value in headers if name.startswith(b":")}
        scope = {"type": "http", "http_version": "2",
                 "method": pseudo.get(b":method", b"").decode(),
                 "path": pseudo.get(b":path", b"").decode(),
                 "headers": [(n, v) for n, v in headers if not n.startswith(b":")]}
        status, answer_headers, body = self._endpoint.answer(scope, b"".join(chunks))
        self._h2.send_headers(stream_id, [(b":status", str(status).encode()), *answer_headers],
                              end_stream=not body)
        if body:
            self._h2.send_data(stream_id, body, end_stream=True)


async def serve_h2(app: Callable[[_Window], H2Endpoint], port: int, certfile: str, keyfile: str,
                   streams: int, conn: Connection) -> None:
    """Serve the endpoint ``app(window)`` on loopback ``port`` until the parent stops it."""
    window = _Window()
    endpoint = app(window)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    # Vendors take HTTP/1.1 too, but the clients ask for h2: offering only h2 makes a fallback
    # fail loudly instead of measuring another protocol.
    context.set_alpn_protocols(["h2"])
    live: set[_Server] = set()
    server = await asyncio.get_running_loop().create_server(
        lambda: _Server(endpoint, streams, live), "127.0.0.1", port, ssl=context, backlog=1024)
    try:
        await serve_commands(conn, window.report)
    finally:
        server.close()
        for connection in list(live):
            connection.abort()
        await asyncio.wait_for(server.wait_closed(), 10)
