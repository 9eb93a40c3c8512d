"""Test helpers: role processes, Kafka watchers, a sandbox vendor endpoint, free ports."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from proto import topics

KAFKA = os.environ.get("HERALD_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
REDIS = os.environ.get("HERALD_REDIS_URL", "redis://127.0.0.1:6379/0")
#: The consumer groups of the roles a test run starts carry this prefix, so that a run shares
#: its groups with no one else on the same Kafka (another run, a benchmark, a stale member).
GROUP_PREFIX = os.environ.get("HERALD_GROUP_PREFIX") or f"test-{uuid.uuid4().hex[:8]}-"


# Ports handed out lie below the kernel's ephemeral range (32768 and up here), from which
# servers binding port 0 (the tests' fake vendor servers) and outgoing connections take
# theirs: a port handed out for a role cannot be taken by one of them before the role binds
# it. Each test process starts at its own place and never hands a port out twice.
_FIRST, _LAST = 20_000, 32_000
_START = _FIRST + os.getpid() % 1000 * 10
_PORTS = itertools.chain(range(_START, _LAST), range(_FIRST, _START))


def free_port() -> int:
    """A TCP port nothing listens on right now, not handed out before by this process."""
    for port in _PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"every port from {_FIRST} to {_LAST} was handed out")


async def eventually(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after the timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.05)


async def eventually_async(check: Callable[[], Awaitable[Any]], timeout_s: float,
                           what: str) -> Any:
    """``eventually`` for a check that has to await (a Redis read, say)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.05)


class Role:
    """A ``herald`` role running as a child process, its JSON log lines kept in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.env = env
        self.log_path = log_path
        self._log = log_path.open("ab")
        full_env = {**os.environ, "HERALD_REDIS_URL": REDIS, "HERALD_KAFKA_BOOTSTRAP": KAFKA,
                    "HERALD_GROUP_PREFIX": GROUP_PREFIX, **env}
        self.proc = subprocess.Popen([sys.executable, "-m", "herald", *args],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=full_env)

    def logs(self) -> list[dict[str, Any]]:
        """Every JSON line the process has written so far."""
        lines = []
        for raw in self.log_path.read_bytes().splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
        return lines

    def find(self, event: str, **fields: Any) -> dict[str, Any] | None:
        """The first log line with this event and fields, if any."""
        for line in self.logs():
            if line.get("event") == event and all(line.get(k) == v for k, v in fields.items()):
                return line
        return None

    async def wait_log(self, event: str, timeout_s: float = 30, **fields: Any) -> dict[str, Any]:
        """Wait for a log line; fail early if the process died."""

        def check() -> dict[str, Any] | None:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise AssertionError(f"{self.args} exited {self.proc.returncode}:\n{tail}")
            return self.find(event, **fields)

        return await eventually(check, timeout_s, f"{self.args} to log {event} {fields}")

    def kill(self) -> None:
        """SIGKILL: no clean-up at all."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    async def stop(self, timeout_s: float = 20) -> int:
        """SIGTERM, then wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        await eventually(lambda: self.proc.poll() is not None, timeout_s, f"{self.args} to exit")
        self._log.close()
        return self.proc.returncode


class TopicWatcher:
    """Collects every record a topic receives after ``start()``, in the background."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.records: list[Any] = []
        self._consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> TopicWatcher:
        await self._consumer.start()
        if self.topic not in await self._consumer.topics():
            await self._consumer.stop()
            raise AssertionError(f"topic {self.topic} does not exist: run deploy/local/up")
        probe = AIOKafkaProducer(bootstrap_servers=KAFKA)
        await probe.start()
        try:
            partitions = await probe.partitions_for(self.topic)
        finally:
            await probe.stop()
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the end offsets now, before anything is produced
            await self._consumer.position(tp)
        self._task = asyncio.get_running_loop().create_task(self._collect())
        return self

    async def _collect(self) -> None:
        async for message in self._consumer:
            self.records.append(message)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()


@dataclass
class SandboxVendor:
    """A local endpoint for the sandbox vendor: records requests, answers as configured."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    #: When each request arrived (``time.monotonic``).
    times: list[float] = field(default_factory=list)
    #: Status codes to answer with, consumed one per request; then 200.
    statuses: list[int] = field(default_factory=list)
    invalid_tokens: set[str] = field(default_factory=set)
    retry_after: str = "0"
    url: str = ""

    def start(self) -> str:
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                vendor.times.append(time.monotonic())
                vendor.requests.append(body)
                status = vendor.statuses.pop(0) if vendor.statuses else 200
                if status == 200:
                    results = [{"token": t, "status": "invalid_token"
                                if t in vendor.invalid_tokens else "ok"} for t in body["tokens"]]
                    payload = json.dumps({"results": results}).encode()
                else:
                    payload = b'{"error": "test"}'
                self.send_response(status)
                if status == 429:
                    self.send_header("retry-after", vendor.retry_after)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/push"
        return self.url

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def tokens(self) -> list[str]:
        return [t for r in self.requests for t in r["tokens"]]


def scrape(port: int) -> str:
    """The text of a role's /metrics endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, 0 if absent."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    prefix = f"{name}{{{want}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _partitions(topic: str) -> list[TopicPartition]:
    probe = AIOKafkaProducer(bootstrap_servers=KAFKA)
    await probe.start()
    try:
        return [TopicPartition(topic, p) for p in sorted(await probe.partitions_for(topic))]
    finally:
        await probe.stop()


async def end_offsets(topic: str) -> dict[int, int]:
    """The offset the next record of each partition of ``topic`` will take."""
    tps = await _partitions(topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


async def committed_offsets(group: str, topic: str) -> dict[int, int]:
    """The offsets ``group`` (of this run's roles) committed on each partition of ``topic``
    (-1: none)."""
    tps = await _partitions(topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=GROUP_PREFIX + group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        committed = {tp.partition: await consumer.committed(tp) for tp in tps}
    finally:
        await consumer.stop()
    return {p: -1 if offset is None else offset for p, offset in committed.items()}


async def caught_up(group: str, topic: str) -> bool:
    """Whether ``group`` (of this run's roles) has committed every record of ``topic`` so far;
    a partition it never committed counts as read only if nothing was published to it."""
    committed = await committed_offsets(group, topic)
    return {p: max(0, o) for p, o in committed.items()} == await end_offsets(topic)


async def commit_offsets(group: str, topic: str, offsets: dict[int, int], *,
                         prefix: str = GROUP_PREFIX) -> None:
    """Commit ``offsets`` for ``group`` (of this run's roles) on ``topic``: where its next
    member starts. The group must have no member at the time (Kafka refuses a commit from
    outside a live group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=prefix + group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in offsets])
        await consumer.commit({TopicPartition(topic, p): o for p, o in offsets.items()})
    finally:
        await consumer.stop()


#: The topics the local stack creates (``deploy/local/up``).
TOPICS = Path(__file__).parent.parent / "deploy" / "local" / "topics.txt"


async def groups_at_end(prefix: str) -> None:
    """Commit the end of every topic for every consumer group of the roles, named with
    ``prefix``: roles that join them start with what is published from now on."""
    vendors = [t.split(maxsplit=1)[0] for t in TOPICS.read_text().splitlines()
               if t.startswith(topics.VENDOR_PREFIX)]
    groups = {topics.ROUTER_GROUP: [topics.REQUESTS, topics.FALLBACK, topics.RECALLS],
              topics.FANOUT_GROUP: [topics.FANOUT], topics.STATS_GROUP: [topics.EVENTS],
              topics.CALLBACKS_GROUP: [topics.EVENTS],
              topics.CALLBACKS_RETRY_GROUP: [topics.CALLBACKS_RETRY],
              **{topics.vendor_group(v[len(topics.VENDOR_PREFIX):]): [v] for v in vendors}}
    for group, names in groups.items():
        for name in names:
            await commit_offsets(group, name, await end_offsets(name), prefix=prefix)


async def private_groups() -> dict[str, str]:
    """The environment of roles that get consumer groups no other test shares, started at the
    end of their topics: for a test that kills a role, whose dead membership would otherwise
    hold partitions of the shared groups for a session timeout after the test."""
    prefix = f"{GROUP_PREFIX}{uuid.uuid4().hex[:6]}-"
    await groups_at_end(prefix)
    return {"HERALD_GROUP_PREFIX": prefix}
