"""The bus interface: every stream Herald publishes or consumes, behind one protocol.

``herald.kafka_bus.KafkaBus`` implements it on Kafka; an embedded backend can implement it
in-process. Consumers get at-least-once batches: a batch's offsets are committed only when the
``batch()`` block exits normally; if it raises, the consumer rewinds to the batch's first
record, so nothing is skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class Subscription(Protocol):
    """A consumer group member."""

    def batch(self, timeout_ms: int,
              max_records: int) -> AbstractAsyncContextManager[list[Record]]:
        """Records fetched within ``timeout_ms`` (maybe none), committed if the block succeeds."""

    async def close(self) -> None:
        """Leave the group."""


class Bus(Protocol):
    """Publishing and group consumption."""

    async def start(self) -> None:
        """Connect; raise if the bus cannot be reached."""

    async def stop(self) -> None:
        """Flush what was published and disconnect."""

    async def publish(self, topic: str, value: bytes, *, key: bytes | None = None,
                      headers: Sequence[tuple[str, bytes]] = ()) -> asyncio.Future[object]:
        """Queue a record; the returned future resolves once the bus has stored it."""

    async def subscribe(self, topics: Sequence[str], group: str) -> Subscription:
        """Join ``group`` on ``topics``, starting from the group's committed offsets."""
