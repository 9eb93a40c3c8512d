"""Fan-out of a push to a resolved audience: planning steps cut it into shards.

A push whose audience must be resolved (all users, a filter, a list of accounts) never sits
whole in one process. The router that takes the request resolves the audience inside the
store (``AudienceStore.resolve``) and publishes step 0 of a chain on ``push.fanout``. Each step
reads pages of the resolved set from its cursor until it holds ``fanout_step`` shards of
``fanout_shard`` devices, publishes them, and publishes the next step with the new cursor;
the last step (cursor 0) ends the chain. Steps are keyed by the task id, so one partition,
and so one router at a time, walks an audience; shards are keyed by their name and spread
over every partition, so every router in the group takes a share of the routing.

Restarts: a step counts (``TaskStore.record_progress``) only after its shards and successor
are stored, and counts once by its sequence number; a replayed step that was counted already
is skipped, so a router killed mid-way leaves at most one step and the shards in its hands to
be done again (devices drop the repeated message id).
"""

from __future__ import annotations

from dataclasses import dataclass

from herald.audience_store import AudienceStore
from proto.envelopes import FanoutShard, FanoutStep


@dataclass(frozen=True, slots=True)
class Cut:
    """What one planning step produced."""

    shards: list[FanoutShard]
    #: The step that goes on from here; None when the audience is exhausted.
    next: FanoutStep | None
    devices: int


async def cut(store: AudienceStore, step: FanoutStep, shard_size: int, shards: int) -> Cut:
    """Read the audience from ``step.cursor`` until ``shards`` shards of ``shard_size``
    devices are full or the audience ends, and cut them. Registration ids repeated within
    the step (a page boundary, a device that moved between accounts) are routed once."""
    want = shard_size * shards
    seen: dict[str, None] = {}
    cursor = step.cursor
    app_id = step.push.app_id
    while True:
        cursor, page = await store.scan_devices(app_id, step.resolved, cursor, shard_size)
        seen.update(dict.fromkeys(page))
        if cursor == 0 or len(seen) >= want:
            break
    devices = list(seen)
    cut_shards = [FanoutShard(step.push, f"{step.seq}.{i}", devices[start:start + shard_size])
                  for i, start in enumerate(range(0, len(devices), shard_size))]
    following = (FanoutStep(step.push, step.resolved, step.seq + 1, cursor,
                            step.before + len(devices)) if cursor else None)
    return Cut(cut_shards, following, len(devices))
