"""The backends a role runs on: the Redis store and the Kafka bus, connected and released."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from herald.kafka_bus import KafkaBus
from herald.redis_store import RedisStore
from herald.runtime import bounded
from herald.settings import CommonSettings
from proto.audience import DEFAULT_LIMITS, AudienceLimits


@asynccontextmanager
async def backends(settings: CommonSettings, client_id: str,
                   limits: AudienceLimits = DEFAULT_LIMITS
                   ) -> AsyncIterator[tuple[RedisStore, KafkaBus]]:
    """The store (pinged) and the bus (started) for the block; on leaving, the bus is flushed
    and stopped, then the store closed, each step bounded so that a stuck backend never keeps
    a stopping role alive."""
    store = RedisStore(settings.redis_url, limits=limits)
    try:
        await store.ping()
        bus = KafkaBus(settings.kafka_bootstrap, client_id=client_id,
                       group_prefix=settings.group_prefix)
        await bus.start()
        try:
            yield store, bus
        finally:
            await bounded(bus.stop(), 10, "kafka")
    finally:
        await bounded(store.close(), 5, "redis")
