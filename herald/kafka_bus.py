"""``Bus`` on Kafka (aiokafka)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError

from herald.bus import Record

log = structlog.get_logger()


class _HoldRebalance(ConsumerRebalanceListener):
    """Make a rebalance wait for the batch in hand, so its offsets are committed by their owner."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self._lock = lock

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self._lock:
            log.info("partitions revoked", partitions=[f"{tp.topic}/{tp.partition}"
                                                       for tp in revoked])

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("partitions assigned", partitions=[f"{tp.topic}/{tp.partition}"
                                                    for tp in assigned])


class KafkaSubscription:
    """A consumer group member with manual, after-the-work commits."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        self._lock = asyncio.Lock()

    @property
    def listener(self) -> ConsumerRebalanceListener:
        """Rebalance listener to subscribe with."""
        return _HoldRebalance(self._lock)

    @asynccontextmanager
    async def batch(self, timeout_ms: int, max_records: int) -> AsyncIterator[list[Record]]:
        """See ``Subscription.batch``."""
        fetched = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        async with self._lock:
            # A rebalance may have run between the fetch and the lock: records of partitions
            # this member lost are the new owner's to handle (from the last commit), and
            # handling them here too would do their work twice.
            owned = self._consumer.assignment()
            fetched = {tp: messages for tp, messages in fetched.items() if tp in owned}
            records = [Record(m.topic, m.partition, m.offset, m.key, m.value,
                              tuple(m.headers or ()))
                       for messages in fetched.values() for m in messages]
            try:
                yield records
            except BaseException:
                for tp, messages in fetched.items():
                    self._consumer.seek(tp, messages[0].offset)
                raise
            if fetched:
                offsets = {tp: messages[-1].offset + 1 for tp, messages in fetched.items()}
                try:
                    await self._consumer.commit(offsets)
                except CommitFailedError:
                    # The group moved on; the new owner re-reads from the last commit, which
                    # is at-least-once, and device dedup by message id keeps it to once.
                    log.warning("commit failed after rebalance", partitions=len(offsets))

    async def close(self) -> None:
        """Leave the group."""
        await self._consumer.stop()


class KafkaBus:
    """Kafka implementation of ``herald.bus.Bus``."""

    def __init__(self, bootstrap: str, *, client_id: str, linger_ms: int = 1,
                 group_prefix: str = "") -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._group_prefix = group_prefix
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, client_id=client_id, acks="all",
            enable_idempotence=True, linger_ms=linger_ms, max_batch_size=256 * 1024,
        )
        self._subscriptions: list[KafkaSubscription] = []

    async def start(self) -> None:
        """See ``Bus.start``."""
        await self._producer.start()

    async def stop(self) -> None:
        """See ``Bus.stop``."""
        for sub in self._subscriptions:
            await sub.close()
        await self._producer.stop()

    async def publish(self, topic: str, value: bytes, *, key: bytes | None = None,
                      headers: Sequence[tuple[str, bytes]] = ()) -> asyncio.Future[object]:
        """See ``Bus.publish``."""
        return await self._producer.send(topic, value, key=key, headers=list(headers) or None)

    async def subscribe(self, topics: Sequence[str], group: str) -> KafkaSubscription:
        """See ``Bus.subscribe``."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, client_id=self._client_id,
            group_id=self._group_prefix + group,
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        sub = KafkaSubscription(consumer)
        consumer.subscribe(list(topics), listener=sub.listener)
        await consumer.start()
        self._subscriptions.append(sub)
        return sub
