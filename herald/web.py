"""Serving an ASGI app inside a role: uvicorn, with the role's stop event owning the signals.

The HTTP roles (``herald api``, ``herald receipts``) run their app through ``serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from herald.runtime import bounded


class _Server(uvicorn.Server):
    """``uvicorn.Server`` that leaves signals to ``herald.runtime.run`` (the role stops it
    with ``should_exit``) and sets ``listening`` once its socket accepts connections."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave the signal handlers as they are: the role's stop event handles them."""
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start, then tell that the server listens."""
        await super().startup(sockets)
        if self.started:
            self.listening.set()


async def serve(app: Any, host: str, port: int, stop: asyncio.Event,
                listening: Callable[[], None]) -> None:
    """Serve ``app`` until ``stop`` is set, calling ``listening()`` once the socket accepts;
    then finish the requests in flight (15 s at most). Returns at once if it cannot listen."""
    # uvicorn's own logging setup is off: its lines go through the JSON handler of logs.
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                            lifespan="off", ws="none", server_header=False,
                            timeout_graceful_shutdown=10)
    server = _Server(config)
    serving = asyncio.ensure_future(server.serve())
    started = asyncio.ensure_future(server.listening.wait())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({serving, started}, return_when=asyncio.FIRST_COMPLETED)
    if server.listening.is_set():
        listening()
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await bounded(serving, 15, "http")
    for waiter in (started, stopping):
        waiter.cancel()
