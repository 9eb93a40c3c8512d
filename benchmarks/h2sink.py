"""The process body both local HTTP/2 vendor endpoints share (``apns_sink``, ``fcm_sink``):
hypercorn over TLS, HTTP/2 only, connections that stay open for a whole run, and the parent's
commands served until it says stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

from benchmarks.child import serve_commands
from benchmarks.sink import Slot, _Window

Headers = list[tuple[bytes, bytes]]


class H2Endpoint:
    """An ASGI app answering each request from its whole body (``answer``), counting the
    connections it saw. hypercorn's HTTP/2 stream breaks on data arriving for a stream it
    answered already, so the body is read before answering."""

    def __init__(self, counters: Any) -> None:
        self._counters = counters
        self._peers: set[Any] = set()

    def answer(self, scope: dict[str, Any], body: bytes) -> tuple[int, Headers, bytes]:
        """Status, headers and body of the answer to one request."""
        raise NotImplementedError

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        peer = scope.get("client")
        if peer not in self._peers:
            self._peers.add(peer)
            self._counters[Slot.CONNECTIONS] += 1
        status, headers, answer = self.answer(scope, b"".join(chunks))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


async def serve_h2(app: Callable[[_Window], Any], port: int, certfile: str, keyfile: str,
                   streams: int, conn: Connection) -> None:
    """Serve the ASGI app ``app(window)`` on loopback ``port`` until the parent stops it."""
    window = _Window()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.certfile, config.keyfile = certfile, keyfile
    # Vendors take HTTP/1.1 too, but the clients ask for h2: offering only h2 makes a fallback
    # fail loudly instead of measuring another protocol.
    config.alpn_protocols = ["h2"]
    config.accesslog = None
    config.errorlog = None
    config.backlog = 1024
    config.h2_max_concurrent_streams = streams
    config.keep_alive_timeout = 600
    config.keep_alive_max_requests = 2**62  # hypercorn would GOAWAY after 1,000 streams
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app(window), config,  # type: ignore[arg-type]
                                     shutdown_trigger=stop.wait))
    try:
        await serve_commands(conn, window.report)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
