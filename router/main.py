"""Entry point of ``herald router``: settings, wiring and signals."""

from __future__ import annotations

import asyncio
import os

from herald import logs, metrics
from herald.kafka_bus import KafkaBus
from herald.redis_store import RedisStore
from herald.runtime import bounded
from herald.settings import RouterSettings
from router.service import Router


async def main(stop: asyncio.Event) -> None:
    """Run one router until ``stop`` is set."""
    settings = RouterSettings()
    log = logs.configure(settings.log_level, role="router", pid=os.getpid())
    metrics.serve(settings.metrics_host, settings.metrics_port)
    store = RedisStore(settings.redis_url)
    await store.ping()
    bus = KafkaBus(settings.kafka_bootstrap, client_id=f"herald-router-{os.getpid()}",
                   group_prefix=settings.group_prefix)
    await bus.start()
    log.info("router started")
    await Router(settings, store, bus).run(stop)
    await bounded(bus.stop(), 10, "kafka")
    await bounded(store.close(), 5, "redis")
    log.info("stopped")
