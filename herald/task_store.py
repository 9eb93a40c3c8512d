"""The task store interface: the progress of push tasks, written idempotently.

``herald.redis_tasks.RedisTasks`` implements it on Redis. The router records what each batch
did for each task only after the batch's hand-offs are stored (``record_progress``), and every
write is keyed so that a replayed batch (a router that died before committing) counts nothing
twice: a planning step counts once by its sequence number, a shard once by its name. The API
accepts and stops tasks; ``proto.tasks.status_of`` derives a task's state from the fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from proto.tasks import TaskStatus


class RecallOutcome(StrEnum):
    """What ``recall_task`` did."""

    RECALLED = "recalled"
    UNKNOWN = "unknown"
    RECALLED_ALREADY = "recalled_already"
    TOO_LATE = "too_late"


@dataclass(frozen=True, slots=True)
class TaskMarks:
    """What the router checks before it works on a task's record."""

    #: A router has started the task (a fan-out request seen again is a replay).
    started: bool
    #: The app stopped or recalled the task: nothing more is routed.
    stopped: bool
    #: Sequence number of the last planning step counted; -1 before the first.
    step: int
    #: The shard asked about has been routed already.
    shard_done: bool


@dataclass(frozen=True, slots=True)
class Progress:
    """What one batch did for one task; every part is optional."""

    app_id: str
    task_id: str
    #: The audience kind, given when the batch started the task, and the audience itself (the
    #: JSON of a ``proto.audience.Audience``), what a recall reaches again.
    audience: str = ""
    target: str = ""
    #: A planning step finished: its sequence number, the shards and devices it cut, and
    #: whether it was the last (the audience is exhausted).
    step: int | None = None
    shards: int = 0
    devices: int = 0
    last: bool = False
    #: A shard was routed: its name and the routing decisions it made, by kind, and the
    #: shards it left for later (devices in quiet hours), which its task counts as its own.
    shard: str = ""
    decisions: Mapping[str, int] = field(default_factory=dict)
    held: int = 0


class TaskStore(Protocol):
    """Progress and state of push tasks."""

    async def accept_task(self, app_id: str, task_id: str, now_ms: int) -> None:
        """Record that the API accepted the task (it is queued until a router starts it)."""

    async def task_marks(self, queries: Sequence[tuple[str, str, str]]) -> list[TaskMarks]:
        """For each (app id, task id, shard name or ''), the task's marks, in one round trip."""

    async def record_progress(self, progress: Sequence[Progress], now_ms: int) -> None:
        """Apply each record, idempotently (see the module docstring), in one round trip."""

    async def stop_task(self, app_id: str, task_id: str, now_ms: int) -> TaskStatus | None:
        """Stop the task if it is queued or running; its status after the call (None: no such
        task). A task that is done or stopped already is left as it is."""

    async def recall_task(self, app_id: str, task_id: str, now_ms: int,
                          window_ms: int) -> RecallOutcome:
        """Mark the task recalled (which stops it) if it is known, not recalled yet, and
        started (or, not started yet, accepted) at most ``window_ms`` ago."""

    async def forget_recall(self, app_id: str, task_id: str) -> None:
        """Take a recall mark back (the recall request could not be published)."""

    async def reject_task(self, app_id: str, task_id: str, reason: str, now_ms: int) -> None:
        """Record that the router refused the task's request, and why (the first reason)."""

    async def claim_idempotency(self, claims: Sequence[tuple[str, str, str]],
                                ttl_s: int) -> list[str]:
        """For each (app id, idempotency key, task id), the task that holds the key: this one
        if the key was free (it is now taken for ``ttl_s``), else the first; one round trip."""

    async def release_idempotency(self, app_id: str, key: str, task_id: str) -> None:
        """Free the key if ``task_id`` holds it (its request could not be published)."""

    async def task_target(self, app_id: str, task_id: str) -> str | None:
        """The audience a started task went to (``Progress.target``), or None if no router
        has started it."""

    async def list_tasks(self, app_id: str, since_ms: int, until_ms: int,
                         limit: int) -> list[TaskStatus]:
        """The app's tasks accepted or started from ``since_ms`` to ``until_ms``, newest
        first, at most ``limit``."""

    async def task_status(self, app_id: str, task_id: str) -> TaskStatus | None:
        """The task's status, or None if nothing is known of it."""
