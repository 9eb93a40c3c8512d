"""Entry point of ``herald api``: settings, wiring and signals."""

from __future__ import annotations

import asyncio
import os

import uvicorn

from herald import logs, metrics
from herald.kafka_bus import KafkaBus
from herald.redis_store import RedisStore
from herald.runtime import bounded
from herald.settings import ApiSettings
from router.api.app import create_app
from router.api.server import Server


async def main(stop: asyncio.Event) -> None:
    """Serve the HTTP API until ``stop`` is set, then finish the requests in flight."""
    settings = ApiSettings()
    log = logs.configure(settings.log_level, role="api", pid=os.getpid())
    metrics.serve(settings.metrics_host, settings.metrics_port)
    store = RedisStore(settings.redis_url, limits=settings.audience_limits())
    await store.ping()
    bus = KafkaBus(settings.kafka_bootstrap, client_id=f"herald-api-{os.getpid()}")
    await bus.start()
    # uvicorn's own logging setup is off: its lines go through the JSON handler of logs.
    config = uvicorn.Config(create_app(settings, store, bus), host=settings.host,
                            port=settings.port, log_config=None, access_log=False,
                            lifespan="off", ws="none", server_header=False,
                            timeout_graceful_shutdown=10)
    server = Server(config)
    serving = asyncio.ensure_future(server.serve())
    listening = asyncio.ensure_future(server.listening.wait())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({serving, listening}, return_when=asyncio.FIRST_COMPLETED)
    if server.listening.is_set():
        log.info("api started", host=settings.host, port=settings.port)
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await bounded(serving, 15, "http")
    for waiter in (listening, stopping):
        waiter.cancel()
    await bounded(bus.stop(), 10, "kafka")
    await bounded(store.close(), 5, "redis")
    log.info("stopped")
