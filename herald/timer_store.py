"""The timer store interface: records to publish on the bus later, and scheduled pushes.

A timer is a record (topic, key, value) due at a time. Every router polls the store for due
timers (``router.timers``): ``timers_due`` leases what it returns, so two routers never take
the same timer at once, and a router that dies before ``timers_done`` leaves its lease to run
out and the timer to be taken again. Publishing is therefore at least once; what the timers
carry (push requests, fan-out shards and steps) is deduplicated by the router's task marks, so
a timer acts once. ``herald.redis_timers.RedisTimers`` implements it on Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Timer:
    """``value`` to publish on ``topic`` under ``key`` at ``due_ms`` (epoch ms)."""

    timer_id: str
    due_ms: int
    topic: str
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class ScheduledPush:
    """A push waiting for its send time; ``request`` is its push request as published."""

    task_id: str
    send_at_ms: int
    request: bytes


class CancelOutcome(StrEnum):
    """What ``cancel_scheduled`` did."""

    CANCELLED = "cancelled"
    #: Not scheduled in this app (or never was).
    UNKNOWN = "unknown"
    #: Its send time came: it is being sent or was sent.
    SENT = "sent"
    #: Cancelled (or stopped) before.
    STOPPED = "stopped"


def schedule_timer_id(app_id: str, task_id: str) -> str:
    """The id of the timer that sends a scheduled task."""
    return f"s/{app_id}/{task_id}"


class TimerStore(Protocol):
    """Timers and the scheduled pushes among them."""

    async def timers_add(self, timers: Sequence[Timer]) -> None:
        """Add each timer unless one of its id is pending (a replay keeps the first), in one
        round trip."""

    async def timers_due(self, now_ms: int, limit: int, lease_ms: int) -> list[Timer]:
        """Up to ``limit`` timers due at ``now_ms``, each leased for ``lease_ms``: no one else
        gets it until the lease ends; ``due_ms`` is when each was due."""

    async def timers_done(self, timer_ids: Sequence[str]) -> None:
        """Forget timers whose records are published (and the schedule entries among them)."""

    async def schedule_push(self, app_id: str, task_id: str, timer: Timer) -> None:
        """Keep the push request ``timer`` publishes at its send time, list it among the
        app's scheduled pushes and mark its task scheduled; a replay changes nothing."""

    async def scheduled_pushes(self, app_id: str, limit: int) -> list[ScheduledPush]:
        """The app's scheduled pushes, soonest first, at most ``limit``."""

    async def cancel_scheduled(self, app_id: str, task_id: str, now_ms: int) -> CancelOutcome:
        """Cancel a scheduled push before its send time: its timer goes and its task is
        stopped (which also drops it if it is being published right now)."""
