"""Entry point of ``herald api``: settings, wiring and signals."""

from __future__ import annotations

import asyncio
import os

from herald import logs, metrics
from herald.kafka_bus import KafkaBus
from herald.redis_store import RedisStore
from herald.runtime import bounded
from herald.settings import ApiSettings
from herald.web import serve
from router.api.app import create_app


async def main(stop: asyncio.Event) -> None:
    """Serve the HTTP API until ``stop`` is set, then finish the requests in flight."""
    settings = ApiSettings()
    log = logs.configure(settings.log_level, role="api", pid=os.getpid())
    metrics.serve(settings.metrics_host, settings.metrics_port)
    store = RedisStore(settings.redis_url, limits=settings.audience_limits())
    await store.ping()
    bus = KafkaBus(settings.kafka_bootstrap, client_id=f"herald-api-{os.getpid()}",
                   group_prefix=settings.group_prefix)
    await bus.start()
    await serve(create_app(settings, store, bus), settings.host, settings.port, stop,
                lambda: log.info("api started", host=settings.host, port=settings.port))
    await bounded(bus.stop(), 10, "kafka")
    await bounded(store.close(), 5, "redis")
    log.info("stopped")
