"""Helpers of the HTTP API tests: starting ``herald api``, checking error answers, and reading
everything an app has in Redis.

The API tests keep their data in a Redis database of their own (``API_REDIS``): showing that a
refused call stored nothing scans the keyspace for the app's keys, which takes seconds in a
database that benchmarks have filled with millions of keys."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import redis.asyncio as redis

from herald.redis_store import RedisStore
from proto.envelopes import DeviceRecord, PushRequest, decode_push_request
from tests.harness import REDIS, Role, TopicWatcher, free_port

ADMIN_TOKEN = "test-admin-token"
API_REDIS = urlunsplit(urlsplit(REDIS)._replace(path="/1"))


@dataclass
class Api:
    """A running ``herald api`` process."""

    role: Role
    url: str
    metrics_port: int


async def start_api(logdir: Path, name: str = "api", **env: str) -> Api:
    """Start ``herald api`` on free ports and wait until it listens."""
    port, metrics_port = free_port(), free_port()
    role = Role(["api"], {"HERALD_PORT": str(port), "HERALD_METRICS_PORT": str(metrics_port),
                          "HERALD_ADMIN_TOKEN": ADMIN_TOKEN,
                          "HERALD_REDIS_URL": API_REDIS, **env}, logdir / f"{name}.log")
    await role.wait_log("api started")
    return Api(role, f"http://127.0.0.1:{port}", metrics_port)


@contextlib.asynccontextmanager
async def serving(logdir: Path, name: str = "api", **env: str) -> AsyncIterator[Api]:
    """``start_api``, stopped cleanly (exit code 0) at the end."""
    running = await start_api(logdir, name, **env)
    try:
        yield running
    finally:
        assert await running.role.stop() == 0


def auth(app) -> httpx.BasicAuth:
    """The Basic credentials of an ``AppRecord``."""
    return httpx.BasicAuth(app.app_id, app.server_secret)


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert that ``response`` is a refusal with this status and code, in the one error shape;
    return its body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "reason"}, body
    assert body["code"] == code, body
    assert isinstance(body["reason"], str) and body["reason"]
    return body


async def dump(client: redis.Redis, app_id: str) -> dict[bytes, object]:
    """Every key of the app (its record and credentials, its audience and task keys, its
    devices' keys) and what it holds."""
    readers: dict[bytes, Callable[[bytes], Awaitable[object]]] = {
        b"set": client.smembers, b"hash": client.hgetall, b"string": client.get,
        b"zset": lambda key: client.zrange(key, 0, -1, withscores=True)}
    state: dict[bytes, object] = {}
    for pattern in (f"herald:{{{app_id}}}:*", f"herald:{{{app_id}:*", f"herald:app:{{{app_id}}}*"):
        async for key in client.scan_iter(match=pattern, count=100_000):
            state[key] = await readers[await client.type(key)](key)
    return state


async def register(app_id: str, registration_id: str, **fields: Any) -> DeviceRecord:
    """Store a device record as the gateway does on REGISTER."""
    record = DeviceRecord(platform="android", vendor="sandbox", vendor_token="secret-token",
                          locale="en-US", tz="UTC", app_version="1.2.3", created_ms=1234,
                          **fields)
    store = RedisStore(API_REDIS)
    try:
        await store.put_device(app_id, registration_id, record)
        await store.add_device(app_id, registration_id)
    finally:
        await store.close()
    return record


def published(watcher: TopicWatcher, task_id: str) -> list[PushRequest]:
    """The push requests on the watched topic keyed by ``task_id``, decoded."""
    return [decode_push_request(r.value) for r in watcher.records
            if r.key == task_id.encode()]
