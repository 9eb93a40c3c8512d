"""Running a fake vendor server (an ASGI app) on hypercorn in the test's event loop.

``serve(app, tls=True)`` also makes a throwaway self-signed certificate and offers HTTP/2 by
ALPN, as APNs does; a client in the test trusts it through the returned ``ssl.SSLContext``, a
sender process through the certificate file (``HERALD_VENDOR_CA_FILE=served.ca_file``), which
exists while the server runs.
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from herald.devcert import self_signed
from tests.harness import free_port


@dataclass(frozen=True)
class Served:
    """Where a fake server listens, and the SSL context that trusts it (False without TLS)."""

    url: str
    verify: ssl.SSLContext | bool
    #: The server's self-signed certificate (PEM), "" without TLS.
    ca_file: str = ""


@asynccontextmanager
async def serve(app: object, *, tls: bool = False) -> AsyncIterator[Served]:
    """Serve ``app`` on a free loopback port until the block ends."""
    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    verify: ssl.SSLContext | bool = False
    ca_file = ""
    with tempfile.TemporaryDirectory() as folder:
        if tls:
            cert, key = self_signed(Path(folder))
            config.certfile, config.keyfile = str(cert), str(key)
            config.alpn_protocols = ["h2", "http/1.1"]
            verify = ssl.create_default_context(cafile=str(cert))
            ca_file = str(cert)
        stop = asyncio.Event()
        task = asyncio.get_running_loop().create_task(
            hypercorn_serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
        scheme = "https" if tls else "http"
        # hypercorn binds inside the task: wait until the port accepts connections.
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.01)
                continue
            writer.close()
            break
        else:
            stop.set()
            raise RuntimeError(f"fake vendor server did not start on port {port}")
        try:
            yield Served(f"{scheme}://127.0.0.1:{port}", verify, ca_file)
        finally:
            stop.set()
            await task
