"""Push tasks: the state a task is in and the status the API reports for it.

No I/O: the store (``herald.task_store``) keeps the fields, written idempotently by the router
as a task's fan-out goes on and by the API when it accepts or stops a task; ``status_of``
derives the state from them, so there is no state field for two writers to disagree on.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

import msgspec


class TaskState(StrEnum):
    """Where a push task is."""

    #: Accepted by the API and published; no router has started it yet.
    QUEUED = "queued"
    #: Waiting for its send time (``send_at_ms``).
    SCHEDULED = "scheduled"
    #: A router started it: its audience is being cut into shards or its shards are routed.
    RUNNING = "running"
    #: Every device of its audience has had its routing decision.
    DONE = "done"
    #: Stopped by the app: no further shard is routed.
    STOPPED = "stopped"
    #: Recalled by the app: stopped, and taken back from the devices that got it.
    RECALLED = "recalled"
    #: The router refused the request (it came straight to Kafka and did not validate).
    REJECTED = "rejected"


class TaskStatus(msgspec.Struct, kw_only=True, frozen=True):
    """What the API reports for a task. ``shards_planned`` counts the shards cut so far, all of
    them once ``planned``; ``devices`` the devices in them; ``decisions`` counts routing
    decisions by kind (online, vendor, inbox, offline, no_channel) over the shards routed."""

    task_id: str
    app_id: str
    state: TaskState
    audience: str = ""
    accepted_ms: int = 0
    #: The send time of a scheduled push.
    scheduled_ms: int = 0
    started_ms: int = 0
    stopped_ms: int = 0
    recalled_ms: int = 0
    rejected_ms: int = 0
    #: Why the router refused the request.
    reason: str = ""
    planned: bool = False
    shards_planned: int = 0
    shards_done: int = 0
    devices: int = 0
    decisions: dict[str, int] = {}


#: Field names of a task's record in the store.
ACCEPTED = "accepted_ms"
STARTED = "started_ms"
STOPPED = "stopped_ms"
RECALLED = "recalled_ms"
SCHEDULED = "scheduled_ms"
REJECTED = "rejected_ms"
REASON = "reason"
AUDIENCE = "audience"
TARGET = "target"
PLANNED = "planned"
SHARDS = "shards"
DEVICES = "devices"
#: The sequence number of the last planning step counted (so that a replayed step counts once).
STEP = "step"
#: Prefix of the decision counters' field names.
DECISION_PREFIX = "n:"


def status_of(app_id: str, task_id: str, fields: Mapping[str, str],
              shards_done: int) -> TaskStatus | None:
    """The status of a task from its stored fields, or None if nothing is stored for it."""
    if not fields:
        return None
    planned = fields.get(PLANNED) == "1"
    shards = int(fields.get(SHARDS, 0))
    if fields.get(REJECTED):
        state = TaskState.REJECTED
    elif fields.get(RECALLED):
        state = TaskState.RECALLED
    elif fields.get(STOPPED):
        state = TaskState.STOPPED
    elif planned and shards_done >= shards:
        state = TaskState.DONE
    elif fields.get(STARTED):
        state = TaskState.RUNNING
    elif fields.get(SCHEDULED):
        state = TaskState.SCHEDULED
    else:
        state = TaskState.QUEUED
    decisions = {name[len(DECISION_PREFIX):]: int(value) for name, value in fields.items()
                 if name.startswith(DECISION_PREFIX)}
    return TaskStatus(task_id=task_id, app_id=app_id, state=state,
                      audience=fields.get(AUDIENCE, ""),
                      accepted_ms=int(fields.get(ACCEPTED, 0)),
                      scheduled_ms=int(fields.get(SCHEDULED, 0)),
                      started_ms=int(fields.get(STARTED, 0)),
                      stopped_ms=int(fields.get(STOPPED, 0)),
                      recalled_ms=int(fields.get(RECALLED, 0)),
                      rejected_ms=int(fields.get(REJECTED, 0)), reason=fields.get(REASON, ""),
                      planned=planned,
                      shards_planned=shards, shards_done=shards_done,
                      devices=int(fields.get(DEVICES, 0)), decisions=decisions)
