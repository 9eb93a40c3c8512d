"""Shared fixtures. Integration tests need the real Redis and Kafka (`deploy/local/up`): when
either is missing they fail with that message, they are never skipped."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as redis
from aiokafka import AIOKafkaProducer

from herald.apps import new_app
from herald.redis_store import RedisStore
from proto import topics
from proto.envelopes import AppRecord
from tests.harness import GROUP_PREFIX, KAFKA, REDIS, SandboxVendor, TopicWatcher, groups_at_end


@pytest.fixture(scope="session", autouse=True)
async def fresh_groups() -> None:
    """Start this run's consumer groups (``GROUP_PREFIX``) at the end of their topics, so that
    the roles a test starts see what the run publishes, not what earlier runs left. Without a
    reachable Kafka there is nothing to do: the tests that need it say so themselves."""
    probe = AIOKafkaProducer(bootstrap_servers=KAFKA)
    try:
        await probe.start()
    except Exception:
        return
    await probe.stop()
    await groups_at_end(GROUP_PREFIX)


@pytest.fixture
def uid() -> str:
    """A short id unique to this test, for app, device and task ids."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
async def redis_client() -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS)
    try:
        await client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS} ({exc}); run deploy/local/up")
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
async def producer() -> AsyncIterator[AIOKafkaProducer]:
    """A Kafka producer, as a backend would use to publish push requests."""
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all")
    try:
        await producer.start()
    except Exception as exc:
        pytest.fail(f"Kafka is not reachable at {KAFKA} ({exc}); run deploy/local/up")
    yield producer
    await producer.stop()


@pytest.fixture
async def app(redis_client, uid) -> AsyncIterator[AppRecord]:
    """A fresh app in the real store."""
    store = RedisStore(REDIS)
    record = new_app(f"app-{uid}")
    await store.put_app(record)
    await store.close()
    yield record


@pytest.fixture
async def store(redis_client) -> AsyncIterator[RedisStore]:
    """The real store, on the tests' Redis."""
    opened = RedisStore(REDIS)
    yield opened
    await opened.close()


@pytest.fixture
async def events() -> AsyncIterator[TopicWatcher]:
    """Every record ``push.events`` receives during the test."""
    watcher = await TopicWatcher(topics.EVENTS).start()
    yield watcher
    await watcher.stop()


@pytest.fixture
def sandbox() -> Iterator[SandboxVendor]:
    vendor = SandboxVendor()
    vendor.start()
    yield vendor
    vendor.stop()


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path
