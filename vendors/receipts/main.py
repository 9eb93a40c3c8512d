"""Entry point of ``herald receipts``: settings, wiring and signals."""

from __future__ import annotations

import asyncio
import os

from herald import logs, metrics
from herald.settings import ReceiptsSettings
from herald.web import serve
from herald.wiring import backends
from vendors.receipts.app import create_app


async def main(stop: asyncio.Event) -> None:
    """Take vendor receipts until ``stop`` is set, then finish the posts in flight."""
    settings = ReceiptsSettings()
    log = logs.configure(settings.log_level, role="receipts", pid=os.getpid())
    metrics.serve(settings.metrics_host, settings.metrics_port)
    async with backends(settings, f"herald-receipts-{os.getpid()}") as (store, bus):
        app = create_app(store, bus, store, settings.max_body_bytes)
        await serve(app, settings.host, settings.port, stop,
                    lambda: log.info("receipts started", host=settings.host, port=settings.port))
    log.info("stopped")

