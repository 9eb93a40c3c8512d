"""The producer generator process: publishes to Kafka as a backend (or the router) would.

``Paced`` publishes unicast push requests at a fixed rate for a fixed time, each stamped with
its produce time in ``message.data["t"]`` (microseconds since the epoch). ``Bulk`` builds its
records first, then publishes them as fast as the client takes them: push requests with many
registration ids (for the router) or vendor jobs (for a vendor sender).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from enum import IntEnum
from multiprocessing.connection import Connection
from typing import Any, ClassVar, Literal

import uvloop
from aiokafka import AIOKafkaProducer

from benchmarks.child import Child, Report, serve_commands
from benchmarks.devices import rid
from benchmarks.procs import KAFKA
from proto import topics
from proto.envelopes import (
    PushRequest,
    VendorJob,
    VendorTarget,
    encode_internal,
    encode_push_request,
)
from proto.message import Message

#: Sends in flight before the producer waits for their acknowledgements.
_WINDOW = 2000


class Slot(IntEnum):
    """Counters a producer process shares with the scenario."""

    SENT = 0
    DONE = 1


@dataclass(frozen=True, slots=True)
class Paced:
    """``rate`` unicast pushes per second for ``duration_s`` to random devices of ``app_id``."""

    app_id: str
    devices: int
    rate: float
    duration_s: float
    tag: str
    #: Partitions of ``push.requests`` to publish to, in turn (all of them if empty).
    partitions: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Bulk:
    """``count`` records of ``kind``, each for ``ids`` random devices of ``app_id``."""

    kind: Literal["requests", "vendor_jobs"]
    app_id: str
    devices: int
    count: int
    ids: int
    tag: str
    #: Partitions to publish to, in turn (all of them if empty).
    partitions: tuple[int, ...] = ()

    #: The vendor channel of vendor jobs; a subclass names another, with its ``token``.
    VENDOR: ClassVar[str] = "sandbox"

    def topic(self) -> str:
        """Where the records go."""
        return topics.REQUESTS if self.kind == "requests" else topics.vendor_topic(self.VENDOR)

    def token(self, device: int) -> str:
        """The vendor token of device number ``device``."""
        return f"token-{device}"

    def records(self) -> list[tuple[bytes, bytes]]:
        """(key, value) of every record, built up front."""
        rng = random.Random(self.tag)
        out = []
        for i in range(self.count):
            task = f"{self.tag}-{i}"
            picked = rng.sample(range(self.devices), self.ids)
            if self.kind == "requests":
                value = encode_push_request(PushRequest(
                    task_id=task, app_id=self.app_id, registration_ids=[rid(d) for d in picked],
                    message=Message(title="bench", body="router scenario"), push_flag=0))
            else:
                value = encode_internal(VendorJob(
                    app_id=self.app_id, task_id=task, msg_id=task,
                    message=Message(title="bench", body="vendor scenario"),
                    targets=[VendorTarget(rid(d), self.token(d)) for d in picked]))
            out.append((task.encode(), value))
        return out


class Producer:
    """One aiokafka producer and what it did."""

    def __init__(self, counters: Any, *, linger_ms: int) -> None:
        self._counters = counters
        self._kafka = AIOKafkaProducer(bootstrap_servers=KAFKA, acks=1, linger_ms=linger_ms,
                                       max_batch_size=1024 * 1024, max_request_size=4 * 2**20)
        self._pending: list[asyncio.Future[Any]] = []
        self.first_send = 0.0
        self.last_send = 0.0
        self.max_behind_ms = 0.0
        self.error = ""

    async def start(self) -> None:
        """Connect to Kafka."""
        await self._kafka.start()

    async def stop(self) -> None:
        """Flush and disconnect."""
        await self._kafka.stop()

    async def send(self, topic: str, key: bytes | None, value: bytes,
                   partitions: tuple[int, ...]) -> None:
        """Publish one record (to the next of ``partitions``, if any); wait for the
        acknowledgements every ``_WINDOW`` records."""
        now = time.time()
        self.first_send = self.first_send or now
        self.last_send = now
        sent = self._counters[Slot.SENT]
        partition = partitions[sent % len(partitions)] if partitions else None
        self._pending.append(await self._kafka.send(topic, value, key=key, partition=partition))
        self._counters[Slot.SENT] += 1
        if len(self._pending) >= _WINDOW:
            await self.settle()

    async def settle(self) -> None:
        """Wait until Kafka acknowledged every record sent."""
        await asyncio.gather(*self._pending)
        self._pending = []

    async def paced(self, spec: Paced) -> None:
        """Publish ``spec.rate`` pushes a second, on schedule, for ``spec.duration_s``."""
        total = round(spec.rate * spec.duration_s)
        rng = random.Random(spec.tag)
        start = time.monotonic()
        for i in range(total):
            due = start + i / spec.rate
            ahead = due - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
            else:
                self.max_behind_ms = max(self.max_behind_ms, -ahead * 1000)
            sent_us = time.time_ns() // 1000
            request = PushRequest(
                task_id=f"{spec.tag}-{i}", app_id=spec.app_id,
                registration_ids=[rid(rng.randrange(spec.devices))],
                message=Message(title="bench", body="unicast", data={"t": sent_us}),
                push_flag=1)
            await self.send(topics.REQUESTS, None, encode_push_request(request),
                            spec.partitions)
        await self.settle()

    async def bulk(self, spec: Bulk) -> None:
        """Publish every record of ``spec`` as fast as the client takes them."""
        topic = spec.topic()
        for key, value in spec.records():
            await self.send(topic, key, value, spec.partitions)
        await self.settle()

    def report(self) -> Report:
        """What was sent, and when."""
        return {"sent": self._counters[Slot.SENT], "first_send": self.first_send,
                "last_send": self.last_send, "max_behind_ms": round(self.max_behind_ms, 2),
                "error": self.error}


class Publisher:
    """A producer process seen from the scenario."""

    def __init__(self, spec: Paced | Bulk) -> None:
        self.total = (round(spec.rate * spec.duration_s) if isinstance(spec, Paced)
                      else spec.count)
        self._child = Child(main, spec)

    @property
    def sent(self) -> int:
        """Records handed to Kafka so far."""
        return self._child.count(Slot.SENT)

    @property
    def done(self) -> bool:
        """Whether every record was sent and acknowledged (or the producer failed)."""
        return self._child.count(Slot.DONE) != 0

    async def finish(self) -> Report:
        """Stop the process; its report. Raises if it failed."""
        report = await self._child.stop()
        if report["error"]:
            raise RuntimeError(f"producer failed: {report['error']}")
        return report


def main(spec: Paced | Bulk, counters: Any, conn: Connection) -> None:
    """Entry point of a producer process."""
    uvloop.run(_run(spec, counters, conn))


async def _run(spec: Paced | Bulk, counters: Any, conn: Connection) -> None:
    producer = Producer(counters, linger_ms=0 if isinstance(spec, Paced) else 5)
    await producer.start()

    async def produce() -> None:
        try:
            await (producer.paced(spec) if isinstance(spec, Paced) else producer.bulk(spec))
        except Exception as exc:
            producer.error = repr(exc)
        counters[Slot.DONE] = 1

    task = asyncio.create_task(produce())
    try:
        await serve_commands(conn, producer.report)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await producer.stop()
