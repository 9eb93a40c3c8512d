"""The stats store interface: counters folded from delivery events, traces, daily totals.

``herald.redis_stats.RedisStats`` implements it on Redis. Folding is idempotent: each event
adds to a counter only for devices whose trace did not have that hop yet, so an event that
arrives twice (a role replayed a batch, the stats consumer re-read a partition) counts once.
Field names and the funnel's definitions live in ``proto.stats``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from proto.events import Event
from proto.stats import TaskStats, Trace


class StatsStore(Protocol):
    """Per-task counters, per-delivery traces and per-app daily totals."""

    async def fold(self, events: Sequence[Event], trace_ttl_s: int) -> None:
        """Count every device of every event once per hop, in one round trip; keep traces for
        ``trace_ttl_s``. Events without an app id (a request refused before its app was read)
        are not counted."""

    async def task_stats(self, app_id: str, task_id: str) -> TaskStats | None:
        """The task's funnel and losses, or None if no event of it was counted."""

    async def trace(self, app_id: str, task_id: str, registration_id: str) -> Trace | None:
        """Every hop of the task's delivery to the device, or None if none is kept."""

    async def daily(self, app_id: str, days: Sequence[str]) -> dict[str, dict[str, int]]:
        """The app's devices per stage on each day (YYYY-MM-DD, UTC) that has any."""
