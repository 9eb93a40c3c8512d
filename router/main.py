"""Entry point of ``herald router``: settings, wiring and signals."""

from __future__ import annotations

import asyncio
import os

from herald import logs, metrics
from herald.settings import RouterSettings
from herald.wiring import backends
from router.service import Router


async def main(stop: asyncio.Event) -> None:
    """Run one router until ``stop`` is set."""
    settings = RouterSettings()
    log = logs.configure(settings.log_level, role="router", pid=os.getpid())
    metrics.serve(settings.metrics_host, settings.metrics_port)
    async with backends(settings, f"herald-router-{os.getpid()}") as (store, bus):
        log.info("router started")
        await Router(settings, store, bus).run(stop)
    log.info("stopped")
