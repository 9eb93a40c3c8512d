"""Entry point of ``herald api``: settings, wiring and signals."""

from __future__ import annotations

import asyncio
import os

from herald import logs, metrics
from herald.settings import ApiSettings
from herald.web import serve
from herald.wiring import backends
from router.api.app import create_app


async def main(stop: asyncio.Event) -> None:
    """Serve the HTTP API until ``stop`` is set, then finish the requests in flight."""
    settings = ApiSettings()
    log = logs.configure(settings.log_level, role="api", pid=os.getpid())
    metrics.serve(settings.metrics_host, settings.metrics_port)
    async with backends(settings, f"herald-api-{os.getpid()}",
                        settings.audience_limits()) as (store, bus):
        await serve(create_app(settings, store, bus), settings.host, settings.port, stop,
                    lambda: log.info("api started", host=settings.host, port=settings.port))
    log.info("stopped")
