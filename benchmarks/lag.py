"""Consumer group lag, read the way an operator reads it: end offsets minus committed ones."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from tqdm import tqdm

from benchmarks.child import Report
from benchmarks.procs import KAFKA
from benchmarks.producer import Bulk, Publisher


async def topic_partitions(admin: AIOKafkaAdminClient,
                           names: Sequence[str]) -> list[TopicPartition]:
    """Every partition of the topics ``names``; raises if one is missing."""
    found = []
    for topic in await admin.describe_topics(list(names)):
        if topic["error_code"] or not topic["partitions"]:
            raise RuntimeError(f"topic {topic['topic']} is missing: run deploy/local/up")
        found += [TopicPartition(topic["topic"], p["partition"]) for p in topic["partitions"]]
    return found


class GroupLag:
    """Lag of ``group`` on ``topics``, and a way to start the group at their end."""

    def __init__(self, group: str, *topics: str) -> None:
        self.group = group
        self.topics = topics
        self.only: set[TopicPartition] = set()
        self._admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False)
        self._partitions: list[TopicPartition] = []

    async def start(self) -> GroupLag:
        """Connect and learn the topics' partitions."""
        await self._admin.start()
        await self._consumer.start()
        self._partitions = await topic_partitions(self._admin, self.topics)
        return self

    async def close(self) -> None:
        """Disconnect."""
        await self._consumer.stop()
        await self._admin.close()

    def restrict(self, topic: str, partitions: tuple[int, ...]) -> None:
        """Count only these partitions of ``topic`` (the ones our role holds), and no other
        topic: the rest of the group's members get none of the work."""
        self.only = {TopicPartition(topic, p) for p in partitions}

    async def end_offsets(self) -> dict[TopicPartition, int]:
        """The next offset of every partition counted."""
        counted = [tp for tp in self._partitions if not self.only or tp in self.only]
        ends: dict[TopicPartition, int] = await self._consumer.end_offsets(counted)
        return ends

    async def lag(self) -> int:
        """Records produced to the topics and not yet committed by the group."""
        committed = await self._admin.list_consumer_group_offsets(self.group)
        ends = await self.end_offsets()
        starts = await self._consumer.beginning_offsets(list(ends))
        return sum(end - (committed[tp].offset if tp in committed else starts[tp])
                   for tp, end in ends.items())

    async def members(self) -> int:
        """Consumers in the group right now."""
        described = await self._admin.describe_consumer_groups([self.group])
        groups = described[0].groups
        return len(groups[0][5]) if groups else 0

    async def skip_backlog(self) -> bool:
        """Commit the end of the topics for the group, so it starts with nothing to do;
        False (nothing done) when the group has members, who would refuse the commit."""
        if await self.members():
            return False
        ends = await self.end_offsets()
        committer = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=self.group,
                                     enable_auto_commit=False)
        await committer.start()
        try:
            committer.assign(list(ends))
            await committer.commit(ends)
        finally:
            await committer.stop()
        return True

async def publish_and_drain(spec: Bulk, lag: GroupLag, timeout_s: float) -> tuple[Report, float]:
    """Publish ``spec`` while watching ``lag``; the producer's report, and the wall-clock time
    at which every record was produced and the group's lag was back to 0."""
    publisher = Publisher(spec)
    deadline = time.monotonic() + timeout_s
    with tqdm(total=publisher.total, desc=f"{spec.kind} consumed", unit="rec",
              mininterval=1) as bar:
        while time.monotonic() < deadline:
            done = publisher.done
            behind = await lag.lag()
            bar.update(max(0, publisher.sent - behind) - bar.n)
            bar.set_postfix(sent=publisher.sent, lag=behind, refresh=False)
            if done and behind == 0:
                drained_at = time.time()
                break
            await asyncio.sleep(0.05)
        else:
            await publisher.finish()
            raise TimeoutError(f"group {lag.group} still behind after {timeout_s}s")
    return await publisher.finish(), drained_at
