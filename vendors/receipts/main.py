"""Entry point of ``herald receipts``: settings, wiring and signals."""

from __future__ import annotations

import asyncio
import os

from herald import logs, metrics
from herald.kafka_bus import KafkaBus
from herald.redis_store import RedisStore
from herald.runtime import bounded
from herald.settings import ReceiptsSettings
from herald.web import serve
from vendors.receipts.app import create_app


async def main(stop: asyncio.Event) -> None:
    """Take vendor receipts until ``stop`` is set, then finish the posts in flight."""
    settings = ReceiptsSettings()
    log = logs.configure(settings.log_level, role="receipts", pid=os.getpid())
    metrics.serve(settings.metrics_host, settings.metrics_port)
    store = RedisStore(settings.redis_url)
    await store.ping()
    bus = KafkaBus(settings.kafka_bootstrap, client_id=f"herald-receipts-{os.getpid()}",
                   group_prefix=settings.group_prefix)
    await bus.start()
    app = create_app(store, bus, store, settings.max_body_bytes)
    await serve(app, settings.host, settings.port, stop,
                lambda: log.info("receipts started", host=settings.host, port=settings.port))
    await bounded(bus.stop(), 10, "kafka")
    await bounded(store.close(), 5, "redis")
    log.info("stopped")

