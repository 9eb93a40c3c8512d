"""Push speed: the times at which a paced push's shards and planning steps are due.

A push with ``speed`` spreads its audience evenly: the shard whose first device comes after
``before`` devices is due ``before / speed`` seconds after the push started. The one router
walking the audience (``router.fanout``) sets these times, so the rate holds over every router
together: whichever router's timer loop publishes a shard, it does so at the same time.
Shards are small enough (a tenth of a second of devices) that the rate is even within a
second; the next planning step is due a second before its first shard, so planning keeps
ahead of sending without holding the whole audience in timers.
"""

from __future__ import annotations

from proto.envelopes import FanoutPush

#: How much of a second one paced shard carries.
SHARD_S = 0.1
#: How long before its first shard is due a paced planning step is.
PLAN_LEAD_MS = 1000


def shard_size(speed: int, largest: int) -> int:
    """Devices per shard of a push spread at ``speed`` devices per second."""
    return max(1, min(largest, round(speed * SHARD_S)))


def due_ms(push: FanoutPush, before: int) -> int:
    """When the shard that follows ``before`` devices of the push is due (epoch ms)."""
    return push.started_ms + before * 1000 // push.speed


def timer_id(push: FanoutPush, name: str) -> str:
    """The id of the timer that publishes the push's fan-out record ``name``."""
    return f"f/{push.app_id}/{push.task_id}/{name}"
