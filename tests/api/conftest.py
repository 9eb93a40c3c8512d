"""Fixtures of the HTTP API tests: one ``herald api`` process for the session, on the real Redis
(the tests' own database, ``API_REDIS``) and Kafka, and an httpx client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as redis

from herald.apps import new_app
from herald.redis_store import RedisStore
from proto import topics
from proto.envelopes import AppRecord
from tests.api.helpers import API_REDIS, Api, serving
from tests.harness import TopicWatcher


@pytest.fixture(scope="session")
async def redis_client() -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(API_REDIS)
    try:
        await client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {API_REDIS} ({exc}); run deploy/local/up")
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
async def store(redis_client) -> AsyncIterator[RedisStore]:
    """The store the API runs on, to set up devices and tasks and to read outcomes."""
    opened = RedisStore(API_REDIS)
    yield opened
    await opened.close()


@pytest.fixture(scope="session")
async def api(tmp_path_factory, redis_client) -> AsyncIterator[Api]:
    async with serving(tmp_path_factory.mktemp("api")) as running:
        yield running


@pytest.fixture(scope="session")
async def http(api) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
        yield client


async def _new_app(store: RedisStore, app_id: str) -> AppRecord:
    record = new_app(app_id)
    await store.put_app(record)
    return record


@pytest.fixture
async def app(store, uid) -> AppRecord:
    """A fresh app in the API's store."""
    return await _new_app(store, f"app-{uid}")


@pytest.fixture
async def other(store, uid) -> AppRecord:
    """A second app, whose data the first app's credentials must never reach."""
    return await _new_app(store, f"other-{uid}")


@pytest.fixture
async def requests_topic() -> AsyncIterator[TopicWatcher]:
    """Every record ``push.requests`` receives during the test."""
    watcher = await TopicWatcher(topics.REQUESTS).start()
    yield watcher
    await watcher.stop()
