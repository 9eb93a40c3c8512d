"""The policy store interface: an app's delivery policy, and the frequency cap's windows.

``herald.redis_policy.RedisPolicy`` implements it on Redis. The cap keeps, per app and cap
subject (an account, or a device without one: ``proto.policy.cap_subject``), the ids of the
tasks that reached it within the period, scored by time: a sliding window. A task counts once
per subject however many devices or shards of it reach the subject, and a replayed shard
finds its task counted already, so the cap is idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from proto.policy import AppPolicy


@dataclass(frozen=True, slots=True)
class CapTake:
    """One push's claim on the cap of ``subjects`` of app ``app_id``: at most ``count`` tasks
    per subject in any ``period_s`` ending at ``now_ms``."""

    app_id: str
    task_id: str
    subjects: Sequence[str]
    count: int
    period_s: int
    now_ms: int


class PolicyStore(Protocol):
    """Apps' delivery policies and their frequency caps."""

    async def put_policy(self, app_id: str, policy: AppPolicy) -> None:
        """Create or replace the app's policy."""

    async def get_policy(self, app_id: str) -> AppPolicy | None:
        """The app's policy, or None if it has none. Raises ``proto.errors.DecodeError`` if
        the stored value is not a policy."""

    async def delete_policy(self, app_id: str) -> bool:
        """Remove the app's policy; whether it had one."""

    async def get_policies(self, app_ids: Sequence[str]) -> list[AppPolicy | None]:
        """Each app's policy (None: none, or a stored value that is not one), in one round
        trip."""

    async def cap_take(self, app_id: str, task_id: str, accounts: Sequence[str], count: int,
                       period_s: int, now_ms: int) -> list[bool]:
        """Per subject (``accounts``: ``cap_subject`` values), whether task ``task_id`` may
        reach it, in one round trip: yes if the task counted for it already within the
        period, else yes and counted if fewer than ``count`` tasks did, else no."""

    async def cap_take_many(self, takes: Sequence[CapTake]) -> list[list[bool]]:
        """``cap_take`` for each claim, in order, in one round trip."""
