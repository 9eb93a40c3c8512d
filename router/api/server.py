"""uvicorn's server, run inside a role: the role owns the signals and hears when it listens."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn


class Server(uvicorn.Server):
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
