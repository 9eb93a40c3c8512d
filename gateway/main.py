"""Entry point of ``herald gateway``: settings, wiring and signals."""

from __future__ import annotations

import asyncio

from gateway.server import Gateway
from herald import logs, metrics
from herald.kafka_bus import KafkaBus
from herald.redis_store import RedisStore
from herald.runtime import bounded
from herald.settings import GatewaySettings


async def main(stop: asyncio.Event) -> None:
    """Run one gateway node until ``stop`` is set, then drain it."""
    settings = GatewaySettings()
    log = logs.configure(settings.log_level, role="gateway", node=settings.node_id)
    metrics.serve(settings.metrics_host, settings.metrics_port)
    store = RedisStore(settings.redis_url)
    await store.ping()
    bus = KafkaBus(settings.kafka_bootstrap, client_id=f"herald-gateway-{settings.node_id}",
                   group_prefix=settings.group_prefix)
    await bus.start()
    gateway = Gateway(settings, store, bus)
    await gateway.start()
    serving = asyncio.ensure_future(gateway.serve_forever())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    log.info("draining", connected=gateway.connected)
    await bounded(gateway.drain(), settings.drain_grace_s + 30, "drain")
    stopping.cancel()
    await bounded(bus.stop(), 10, "kafka")
    await bounded(store.close(), 5, "redis")
    log.info("stopped")
