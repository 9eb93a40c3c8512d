"""The stats consumer: ``push.events`` in the group ``herald-stats``, folded batch by batch.

A batch is folded in one store round trip and committed after it, so a consumer that dies
leaves its batch to be read again; folding is idempotent (``herald.stats_store``), so a
re-read batch, or a consumer restarted from earlier offsets, changes no counter.
"""

from __future__ import annotations

import asyncio

import structlog

from herald.bus import Bus, Record
from herald.runtime import consume, dead_letter
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

    async def run(self, stop: asyncio.Event) -> None:
        """Fold batches until ``stop`` is set; a failed batch is retried after a backoff."""
        await consume(self._bus, [topics.EVENTS], topics.STATS_GROUP,
                      self.settings.batch_records, self.fold, stop,
                      seconds=metrics.BATCH_SECONDS, failures=metrics.FAILURES)

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
