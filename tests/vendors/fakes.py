"""In-memory stand-ins for the sender's collaborators: a bus, a store and a scripted client.

They implement only what ``vendors.sender.Sender`` uses, so that its decisions (retries, dead
letters, token removal, credentials) are tested without Kafka, Redis or a vendor; the real
backends are exercised by ``test_sender.py``, ``test_store_vendor.py`` and the e2e test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import msgspec

from herald.bus import Record
from proto import topics
from proto.envelopes import DeviceRecord, VendorJob, encode_internal
from proto.events import Event, decode_event
from vendors.client import BaseClient, TargetResult

Answer = Exception | Callable[[VendorJob], list[TargetResult]] | None


@dataclass
class Published:
    topic: str
    value: bytes
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]


class MemoryBus:
    """Publishes to a list; one subscription hands out ``pending`` records as one batch."""

    def __init__(self) -> None:
        self.published: list[Published] = []
        self.pending: list[Record] = []
        self.committed: list[Record] = []

    async def publish(self, topic: str, value: bytes, *, key: bytes | None = None,
                      headers: Sequence[tuple[str, bytes]] = ()) -> asyncio.Future[object]:
        self.published.append(Published(topic, value, key, tuple(headers)))
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def subscribe(self, topic_names: Sequence[str], group: str) -> MemorySubscription:
        return MemorySubscription(self)

    def events(self) -> list[Event]:
        return [decode_event(p.value) for p in self.published if p.topic == topics.EVENTS]

    def dead_letters(self) -> list[Published]:
        return [p for p in self.published if p.topic == topics.DEADLETTER]


class MemorySubscription:
    def __init__(self, bus: MemoryBus) -> None:
        self._bus = bus

    @asynccontextmanager
    async def batch(self, timeout_ms: int, max_records: int) -> AsyncIterator[list[Record]]:
        records, self._bus.pending = self._bus.pending, []
        if not records:
            await asyncio.sleep(0.001)
        yield records
        self._bus.committed += records

    async def close(self) -> None:
        pass


@dataclass
class MemoryStore:
    """Credentials, device records and daily quota counters in dicts."""

    credentials: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    devices: dict[tuple[str, str], DeviceRecord] = field(default_factory=dict)
    quotas: dict[tuple[str, str, str], int] = field(default_factory=dict)
    credential_reads: int = 0

    async def get_credentials(self, app_id: str, vendor: str) -> dict[str, str] | None:
        self.credential_reads += 1
        stored = self.credentials.get((app_id, vendor))
        return dict(stored) if stored is not None else None

    async def put_credentials(self, app_id: str, vendor: str,
                              credentials: Mapping[str, str]) -> None:
        self.credentials[app_id, vendor] = dict(credentials)

    async def forget_vendor_token(self, app_id: str, registration_id: str, token: str) -> bool:
        record = self.devices.get((app_id, registration_id))
        if record is None or record.vendor_token != token:
            return False
        self.devices[app_id, registration_id] = msgspec.structs.replace(
            record, vendor="", vendor_token="")
        return True

    async def take_daily_quota(self, app_id: str, vendor: str, day: str, amount: int,
                               limit: int) -> bool:
        used = self.quotas.get((app_id, vendor, day), 0)
        if used + amount > limit:
            return False
        self.quotas[app_id, vendor, day] = used + amount
        return True


class ScriptedClient(BaseClient):
    """A vendor client that answers each ``send`` with the next scripted answer.

    An exception is raised, a callable maps the job to results, None (or no answer left)
    delivers to every target.
    """

    name = "fake"

    def __init__(self, *answers: Answer, max_batch: int = 1000) -> None:
        self.answers = list(answers)
        self.max_batch = max_batch
        self.sent: list[tuple[VendorJob, dict[str, str]]] = []

    async def send(self, job: VendorJob, credentials: Mapping[str, str]) -> list[TargetResult]:
        self.sent.append((job, dict(credentials)))
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Exception):
            raise answer
        if answer is not None:
            return answer(job)
        return [TargetResult(t.registration_id) for t in job.targets]

    async def close(self) -> None:
        pass


def record_of(job: VendorJob, offset: int = 0) -> Record:
    """``job`` as the sender consumes it from its vendor topic."""
    return Record(topics.vendor_topic("fake"), 0, offset, job.task_id.encode(),
                  encode_internal(job))


def stages(bus: MemoryBus) -> list[tuple[str, str, str]]:
    """(registration id, stage, reason) of every event, sorted."""
    return sorted((e.registration_id, e.stage, e.reason) for e in bus.events())


def results_where(**by_token: Any) -> Callable[[VendorJob], list[TargetResult]]:
    """An answer giving the token's listed result fields (``{"tok": {"error": ...}}``), else
    success."""
    return lambda job: [TargetResult(t.registration_id, **by_token.get(t.token, {}))
                        for t in job.targets]
