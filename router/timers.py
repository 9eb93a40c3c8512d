"""Timers: publish what waits for its time, from every router at once.

Scheduled pushes (their request back onto ``push.requests`` at the send time), paced fan-out
(shards and steps of a push with a speed onto ``push.fanout``) and pushes held through quiet
hours wait in the store as timers (``herald.timer_store``). Each router polls for due timers;
a lease keeps two routers from taking the same one, and what a router took but did not
publish before dying is taken again once its lease ends. The router's task marks drop a
record published twice, so each timer acts once.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from herald.bus import Bus
from herald.timer_store import Timer, TimerStore
from proto.events import now_ms
from router import metrics

log = structlog.get_logger()

#: Timer id prefixes, by kind (the label of the timer metrics).
KINDS = {"s": "schedule", "f": "pace", "q": "quiet"}


def kind_of(timer_id: str) -> str:
    """The kind of a timer, from its id's prefix."""
    return KINDS.get(timer_id.partition("/")[0], "other")


def count_set(timers: list[Timer]) -> None:
    """Count timers set."""
    for timer in timers:
        metrics.TIMERS.labels(kind_of(timer.timer_id), "set").inc()


class TimerLoop:
    """Publishes due timers until stopped."""

    def __init__(self, store: TimerStore, bus: Bus, *, batch: int, lease_ms: int,
                 tick_s: float) -> None:
        self._store = store
        self._bus = bus
        self._batch = batch
        self._lease_ms = lease_ms
        self._tick_s = tick_s

    async def run(self, stop: asyncio.Event) -> None:
        """Fire due timers every tick (at once again while a full batch was due)."""
        while not stop.is_set():
            try:
                fired = await self.fire_due()
            except Exception:
                # Redis or Kafka away: the leases run out and the timers are taken again.
                metrics.FAILURES.inc()
                log.exception("timers failed")
                fired = 0
            if fired < self._batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._tick_s)

    async def fire_due(self) -> int:
        """Publish the timers due now, then forget them; how many there were."""
        now = now_ms()
        due = await self._store.timers_due(now, self._batch, self._lease_ms)
        if not due:
            return 0
        futures = [await self._bus.publish(t.topic, t.value, key=t.key) for t in due]
        await asyncio.gather(*futures)
        await self._store.timers_done([t.timer_id for t in due])
        for timer in due:
            metrics.TIMERS.labels(kind_of(timer.timer_id), "fired").inc()
            metrics.TIMER_LATENESS.observe(max(0, now - timer.due_ms) / 1000)
        log.info("timers fired", timer_ids=[t.timer_id for t in due][:50], count=len(due))
        return len(due)
