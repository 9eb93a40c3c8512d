"""A backend fault is the server's, not the caller's: with its Redis gone the API answers 500
``internal`` without details and logs the error, and it recovers when Redis is back. The Redis
here is a real redis-server of the test's own, so that stopping it touches nothing else."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as redis

from herald.apps import new_app
from herald.redis_store import RedisStore
from tests.api.helpers import Api, auth, refused, serving
from tests.harness import eventually, eventually_async, free_port


class PrivateRedis:
    """A redis-server on a free port, without persistence."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self._proc: subprocess.Popen | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self._workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)

    async def answers(self) -> bool:
        client = redis.Redis.from_url(self.url)
        try:
            return bool(await client.ping())
        except redis.ConnectionError:
            return False
        finally:
            await client.aclose()


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def fragile(private_redis, tmp_path) -> AsyncIterator[Api]:
    await eventually_async(private_redis.answers, 10, "the private redis-server")
    async with serving(tmp_path, "fragile", HERALD_REDIS_URL=private_redis.url) as running:
        yield running


async def test_redis_outage_is_a_logged_500(fragile, private_redis):
    store = RedisStore(private_redis.url)
    record = new_app("outage")
    await store.put_app(record)
    await store.close()
    async with httpx.AsyncClient(base_url=fragile.url, timeout=30) as client:
        assert (await client.get("/v1/app", auth=auth(record))).status_code == 200
        private_redis.stop()
        response = await client.get("/v1/app", auth=auth(record))
        body = refused(response, 500, "internal")
        assert "redis" not in body["reason"].lower() and "6379" not in body["reason"]
        line = await eventually(lambda: fragile.role.find("request failed", path="/v1/app"),
                                10, "the error's log line")
        assert line["level"] == "error" and "exception" in line
        private_redis.start()
        await eventually_async(private_redis.answers, 10, "the private redis-server again")
        # The data is gone with the restart (no persistence): the app is unknown now.
        refused(await client.get("/v1/app", auth=auth(record)), 401, "unauthorized")
