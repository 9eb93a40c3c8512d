"""The callback sender's parts: one post against a local receiver, cutting batches into posts,
and the config cache on the real Redis. ``Receiver`` serves the end-to-end tests too."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import REGISTRY

from callbacks import retries
from callbacks.batches import plan, source_of
from callbacks.configs import ConfigCache
from callbacks.poster import MAX_ANSWER_BYTES, Failure, Post, attempt, new_client
from herald.bus import Record
from herald.redis_store import RedisStore
from proto import keys, topics
from proto.callbacks import (
    MAX_BATCH,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CallbackConfig,
    verify,
)
from proto.events import Event, Stage
from tests.harness import REDIS, free_port


@dataclass
class Seen:
    """One post a receiver got: ``status`` None while (or because) it hung."""

    body: bytes
    headers: dict[str, str]
    verified: bool
    status: int | None = None


@dataclass
class Receiver:
    """An app's callback endpoint: checks every signature, answers ``statuses`` one per post
    (then 200), or hangs while ``hang`` is set (until ``stop``)."""

    secret: str = "receiver-secret"
    statuses: list[int] = field(default_factory=list)
    hang: bool = False
    answer: bytes = b"ok"
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def start(self) -> Receiver:
        receiver = self
        release = self._release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                ts, signed = self.headers[TIMESTAMP_HEADER], self.headers[SIGNATURE_HEADER]
                fresh = abs(time.time() - int(ts)) < 300
                seen = Seen(body, {k.lower(): v for k, v in self.headers.items()},
                            fresh and verify(receiver.secret, int(ts), body, signed))
                receiver.seen.append(seen)
                if receiver.hang:
                    release.wait(60)
                    return
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", str(len(receiver.answer)))
                self.end_headers()
                self.wfile.write(receiver.answer)
                seen.status = status

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def config(self, *stages: Stage) -> CallbackConfig:
        return CallbackConfig(url=self.url, stages=list(stages), secret=self.secret)

    def delivered(self) -> list[dict[str, Any]]:
        """The bodies of the posts answered 2xx."""
        return [json.loads(s.body) for s in self.seen
                if s.status is not None and 200 <= s.status < 300]

    def events(self) -> list[dict[str, Any]]:
        """The events of the posts answered 2xx."""
        return [e for batch in self.delivered() for e in batch["events"]]


@pytest.fixture
def receiver():
    started = Receiver().start()
    yield started
    started.stop()


def post_to(url: str, body: bytes = b'{"app_id": "a", "events": []}') -> Post:
    return Post("a", url, "receiver-secret", body, 0, "push.events/0/1-1")


async def test_a_post_is_signed_and_delivered(receiver):
    async with new_client(2.0) as client:
        outcome = await attempt(client, post_to(receiver.url), 2.0)
    assert outcome.delivered
    (seen,) = receiver.seen
    assert seen.verified and seen.status == 200
    assert seen.body == b'{"app_id": "a", "events": []}'
    assert seen.headers["content-type"] == "application/json"
    assert abs(int(seen.headers[TIMESTAMP_HEADER.lower()]) - time.time()) < 5


async def test_a_long_answer_is_cut_off_and_still_delivered(receiver):
    receiver.answer = b"x" * (4 * MAX_ANSWER_BYTES)
    async with new_client(2.0) as client:
        assert (await attempt(client, post_to(receiver.url), 2.0)).delivered


async def test_every_failure_is_an_outcome(receiver):
    async with new_client(5.0) as client:
        receiver.statuses = [500, 302, 404]
        for status in (500, 302, 404):
            outcome = await attempt(client, post_to(receiver.url), 5.0)
            assert (outcome.failure, outcome.detail) == (Failure.STATUS, f"HTTP {status}")
        receiver.hang = True
        started = time.monotonic()
        outcome = await attempt(client, post_to(receiver.url), 0.3)
        assert outcome.failure is Failure.TIMEOUT
        assert time.monotonic() - started < 2
        nothing = f"http://127.0.0.1:{free_port()}/hook"
        assert (await attempt(client, post_to(nothing), 2.0)).failure is Failure.CONNECTION
        assert (await attempt(client, post_to("http://[::1/hook"), 2.0)).failure is Failure.ERROR
    assert all(s.verified for s in receiver.seen)


def record(partition: int, offset: int) -> Record:
    return Record("push.events", partition, offset, None, b"")


def test_posts_carry_max_batch_devices_per_app_in_order():
    configs = {app: CallbackConfig(url=f"http://{app}.example/hook", stages=[Stage.SENT],
                                   secret=f"s-{app}") for app in ("a", "b")}
    singles = [(Event(stage=Stage.SENT, task_id="t", app_id="a", registration_id=f"d{i}"),
                record(i % 2, 100 + i)) for i in range(1200)]
    wide = Event(stage=Stage.SENT, task_id="t", app_id="b",
                 registration_ids=[f"w{i}" for i in range(1100)])
    posts = plan([*singles, (wide, record(3, 7)),
                  (Event(stage=Stage.SENT, task_id="t2", app_id="b"), record(3, 8))], configs)
    bodies = [json.loads(p.body) for p in posts]
    assert [(p.app_id, p.events) for p in posts] == [("a", 500), ("a", 500), ("a", 200),
                                                     ("b", 1), ("b", 1), ("b", 2)]
    assert [e["registration_id"] for b in bodies[:3] for e in b["events"]] == [
        f"d{i}" for i in range(1200)]
    assert posts[0].source == "push.events/0/100-598,push.events/1/101-599"
    assert posts[-1].source == "push.events/3/7-8"
    assert [len(e.get("registration_ids", [])) for b in bodies[3:] for e in b["events"]] == [
        MAX_BATCH, MAX_BATCH, 100, 0]
    assert {(p.url, p.secret) for p in posts[3:]} == {("http://b.example/hook", "s-b")}
    assert source_of([record(2, 5), record(1, 9), record(2, 3)]) == (
        "push.events/1/9-9,push.events/2/3-5")


def test_a_retry_record_carries_what_the_retry_needs_but_the_config():
    post = Post("app-1", "http://old.example/hook", "old secret", b'{"app_id": "app-1"}', 3,
                "push.events/2/5-9")
    headers = retries.headers(post, 2, 1_700_000_000_123)
    assert topics.CB_APP in dict(headers) and topics.DL_SOURCE in dict(headers)
    retry = retries.decode(Record(topics.CALLBACKS_RETRY, 0, 7, b"app-1", post.body,
                                  tuple(headers)))
    assert retry == retries.Retry("app-1", 2, 1_700_000_000_123, 3, "push.events/2/5-9",
                                  post.body)
    config = CallbackConfig(url="http://new.example/hook", stages=[Stage.SENT], secret="new")
    assert retry.post(config) == Post("app-1", "http://new.example/hook", "new", post.body, 3,
                                      "push.events/2/5-9")
    for bad in ([], [h for h in headers if h[0] != retries.ATTEMPT],
                [(k, b"x" if k == retries.NOT_BEFORE else v) for k, v in headers],
                [(k, b"1" if k == retries.ATTEMPT else v) for k, v in headers],
                [(k, b"\xff" if k == topics.CB_APP else v) for k, v in headers]):
        with pytest.raises(retries.InvalidRetry):
            retries.decode(Record(topics.CALLBACKS_RETRY, 0, 7, None, b"", tuple(bad)))


def test_a_retry_waits_until_due_but_never_longer_than_the_longest_backoff():
    assert retries.wait_s(10_500, 10.0, 5.0) == 0.5
    assert retries.wait_s(9_000, 10.0, 5.0) == 0.0
    assert retries.wait_s(3_600_000, 10.0, 5.0) == 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lookups(result: str) -> float:
    return REGISTRY.get_sample_value("herald_callbacks_config_lookups_total",
                                     {"result": result}) or 0.0


async def test_configs_are_cached_found_missing_or_invalid(redis_client, uid):
    store = RedisStore(REDIS)
    found, missing, invalid = f"cfg-a-{uid}", f"cfg-b-{uid}", f"cfg-c-{uid}"
    config = CallbackConfig(url="http://127.0.0.1:1/hook", stages=[Stage.CLICKED], secret="s")
    await store.put_callback(found, config)
    await redis_client.set(keys.callback(invalid), b"{not a config")
    clock = Clock()
    cache = ConfigCache(store, ttl_s=10, clock=clock)
    before = {r: lookups(r) for r in ("found", "none", "invalid")}
    try:
        assert await cache.get_many([found, missing, invalid, found]) == {found: config}
        await store.delete_callback(found)
        clock.now += 9
        assert await cache.get_many([found, missing, invalid]) == {found: config}
        assert {r: lookups(r) - before[r] for r in before} == {"found": 1, "none": 1,
                                                               "invalid": 1}
        clock.now += 1
        assert await cache.get_many([found, missing]) == {}
        assert {r: lookups(r) - before[r] for r in before} == {"found": 1, "none": 3,
                                                               "invalid": 1}
    finally:
        await redis_client.delete(keys.callback(invalid))
        await store.close()
