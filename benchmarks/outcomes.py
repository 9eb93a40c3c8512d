"""What ``push.events`` says happened to one task, as a backend would read it.

The offsets are taken before the push is published and the events are read only after the
measurement, so reading them costs the measured window nothing. A ``delivered`` event is what a
gateway emits when it matches a device's ACK (``ts_ms`` is the gateway's clock at that moment),
so the newest of them is the time of the last ACK.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.lag import topic_partitions
from benchmarks.procs import KAFKA
from proto import topics
from proto.errors import DecodeError
from proto.events import Stage, decode_event


@dataclass
class Outcomes:
    """The events of one task, by stage."""

    #: Gateway time (ms) of the first ``delivered`` event of each device.
    acked_ms: dict[str, int] = field(default_factory=dict)
    #: ``delivered`` events beyond the first of a device.
    repeated: int = 0
    #: Devices (or task-level events) of every other stage, by stage and reason
    #: (``sent``, ``failed/offline``, ``failed/ack_timeout``...).
    others: Counter[str] = field(default_factory=Counter)


class TaskEvents:
    """Reads one task's events from ``push.events``, from the offsets at ``start``."""

    def __init__(self) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False)
        self._since: dict[TopicPartition, int] = {}

    async def start(self) -> TaskEvents:
        """Connect and remember where every partition ends now."""
        admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
        await admin.start()
        try:
            partitions = await topic_partitions(admin, [topics.EVENTS])
        finally:
            await admin.close()
        await self._consumer.start()
        self._since = await self._consumer.end_offsets(partitions)
        return self

    async def collect(self, task_id: str, expect: int, timeout_s: float) -> Outcomes:
        """The task's events since ``start``, read until ``expect`` devices have a
        ``delivered`` event and nothing more comes, or nothing comes for a second, or
        ``timeout_s``."""
        self._consumer.assign(list(self._since))
        for tp, offset in self._since.items():
            self._consumer.seek(tp, offset)
        out = Outcomes()
        needle = f'"{task_id}"'.encode()
        deadline = time.monotonic() + timeout_s
        empty = 0
        while time.monotonic() < deadline:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=10_000)
            for records in batches.values():
                for record in records:
                    if record.value is not None and needle in record.value:
                        self._add(out, record.value, task_id)
            empty = 0 if batches else empty + 1
            # Called once the gateways have counted the ACKs (or given up waiting), so the
            # events are in Kafka already: a second without records is the end.
            if (empty and len(out.acked_ms) >= expect) or empty >= 5:
                break
        return out

    @staticmethod
    def _add(out: Outcomes, value: bytes, task_id: str) -> None:
        try:
            event = decode_event(value)
        except DecodeError:
            return
        if event.task_id != task_id:
            return
        devices = event.devices()
        if event.stage != Stage.DELIVERED:
            kind = f"{event.stage}/{event.reason}" if event.reason else str(event.stage)
            out.others[kind] += len(devices) or 1
            return
        for device in devices:
            if device in out.acked_ms:
                out.repeated += 1
            else:
                out.acked_ms[device] = event.ts_ms

    async def close(self) -> None:
        """Disconnect."""
        await self._consumer.stop()
