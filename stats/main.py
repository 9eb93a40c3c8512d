"""Entry point of ``herald stats``: settings, wiring and signals."""

from __future__ import annotations

import asyncio
import os

from herald import logs, metrics
from herald.settings import StatsSettings
from herald.wiring import backends
from stats.service import Stats


async def main(stop: asyncio.Event) -> None:
    """Run one stats consumer until ``stop`` is set."""
    settings = StatsSettings()
    log = logs.configure(settings.log_level, role="stats", pid=os.getpid())
    metrics.serve(settings.metrics_host, settings.metrics_port)
    async with backends(settings, f"herald-stats-{os.getpid()}") as (store, bus):
        log.info("stats started")
        await Stats(settings, store, bus).run(stop)
    log.info("stopped")
