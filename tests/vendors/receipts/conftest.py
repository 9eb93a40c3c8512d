"""The receipt endpoint in this test's event loop, on the real Redis and Kafka: its app behind
an httpx client, a watcher of ``push.events``, and an app with devices to post receipts for."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from herald.kafka_bus import KafkaBus
from herald.redis_store import RedisStore
from proto import topics
from proto.envelopes import AppRecord
from tests.harness import KAFKA, REDIS, TopicWatcher
from tests.vendors.receipts.helpers import add_devices
from vendors.receipts.app import create_app

MAX_BODY = 64 * 1024


@pytest.fixture(scope="session")
async def store() -> AsyncIterator[RedisStore]:
    store = RedisStore(REDIS)
    yield store
    await store.close()


@pytest.fixture(scope="session")
async def receipts(store, redis_client) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the receipt endpoint (the real app on the real store and Kafka)."""
    bus = KafkaBus(KAFKA, client_id=f"test-receipts-{os.getpid()}")
    await bus.start()
    app = create_app(store, bus, store, MAX_BODY)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://receipts.test") as client:
        yield client
    await bus.stop()


@pytest.fixture(scope="session")
async def events() -> AsyncIterator[TopicWatcher]:
    watcher = await TopicWatcher(topics.EVENTS).start()
    yield watcher
    await watcher.stop()


@dataclass
class Vendor:
    """A fresh app with credentials for one vendor and three devices on it."""

    app_id: str
    devices: list[tuple[str, str]]

    def url(self, vendor: str) -> str:
        return f"/receipts/{vendor}/{self.app_id}"


async def vendor_app(store: RedisStore, app: AppRecord, vendor: str,
                     credentials: dict[str, str]) -> Vendor:
    """``app`` with ``credentials`` for ``vendor`` and three devices there."""
    await store.put_credentials(app.app_id, vendor, credentials)
    return Vendor(app.app_id, await add_devices(store, app.app_id, vendor, 3))
