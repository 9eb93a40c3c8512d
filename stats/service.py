"""The stats consumer: ``push.events`` in the group ``herald-stats``, folded batch by batch.

A batch is folded in one store round trip and committed after it, so a consumer that dies
leaves its batch to be read again; folding is idempotent (``herald.stats_store``), so a
re-read batch, or a consumer restarted from earlier offsets, changes no counter.
"""

from __future__ import annotations

import asyncio

import structlog

from herald.backoff import Backoff
from herald.bus import Bus, Record
from herald.runtime import dead_letter
from herald.settings import StatsSettings
from herald.store import Store
from proto import topics
from proto.errors import DecodeError
from proto.events import Event, decode_event
from stats import metrics

log = structlog.get_logger()


class Stats:
    """Folds every event it consumes into the store."""

    def __init__(self, settings: StatsSettings, store: Store, bus: Bus) -> None:
        self.settings = settings
        self._store = store
        self._bus = bus
        self._backoff = Backoff(base_s=0.1, cap_s=5.0)

    async def run(self, stop: asyncio.Event) -> None:
        """Fold batches until ``stop`` is set; a failed batch is retried after a backoff."""
        sub = await self._bus.subscribe([topics.EVENTS], topics.STATS_GROUP)
        failures = 0
        while not stop.is_set():
            try:
                async with sub.batch(timeout_ms=200,
                                     max_records=self.settings.batch_records) as records:
                    if records:
                        with metrics.BATCH_SECONDS.time():
                            await self.fold(records)
                failures = 0
            except Exception:
                failures += 1
                metrics.FAILURES.inc()
                log.exception("batch failed; it will be retried", attempt=failures)
                await asyncio.sleep(self._backoff.delay(failures))
        await sub.close()

    async def fold(self, records: list[Record]) -> None:
        """Fold one batch; an undecodable record goes to the dead-letter topic."""
        events: list[Event] = []
        pending = []
        for record in records:
            try:
                events.append(decode_event(record.value))
            except DecodeError as err:
                metrics.EVENTS.labels("dead_letter").inc()
                log.warning("event rejected", reason=err.reason,
                            source=f"{record.topic}/{record.partition}/{record.offset}")
                pending.append(await dead_letter(self._bus, record, err.reason))
        counted = [e for e in events if e.app_id]
        metrics.EVENTS.labels("counted").inc(len(counted))
        metrics.EVENTS.labels("no_app").inc(len(events) - len(counted))
        await self._store.fold(counted, self.settings.trace_ttl_s)
        await asyncio.gather(*pending)
        log.debug("folded", events=len(counted), task_ids=sorted({e.task_id for e in counted}))
