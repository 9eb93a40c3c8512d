"""Quiet hours: the devices of a batch's pushes for whom it is quiet time now wait until it
ends, then get the push.

A push is held unless it is urgent, a recall, a fallback (its devices had their first
attempt), a pass-through message (``kind == "data"``, which shows nothing) or released from
quiet hours already. Each device's quiet hours are the app's window in the device's own zone
(``proto.policy.device_zone``: the zone it registered with, else the window's), computed once
per zone in the batch. The held devices of one push are grouped by the time their quiet hours
end, and each group becomes a fan-out shard of the push waiting as a timer
(``router.timers``) until then; the push's progress counts those shards as shards of its task,
so the task is done only once they are routed. When a held shard comes back it is routed as
any other (caps and channels are decided then), never held again. A held push keeps its
lifetime: one that ends before the quiet hours do is expired by the time it is routed.

``herald_router_held_total{reason="quiet_hours"}`` counts the devices held.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from herald.store import DeviceState
from herald.timer_store import Timer
from proto import topics
from proto.envelopes import FanoutPush, FanoutShard, encode_internal
from proto.events import now_ms
from proto.policy import QuietHours, device_zone, quiet_until
from router import metrics
from router.caps import PolicyCache
from router.intake import Push, per_push

log = structlog.get_logger()

#: The reason label of the devices quiet hours hold.
QUIET_HOURS = "quiet_hours"


@dataclass(frozen=True, slots=True)
class Quieted:
    """A batch's pushes and device states without the devices quiet hours hold, and the timers
    that bring those back when their quiet hours end."""

    pushes: list[Push]
    states: list[DeviceState]
    timers: list[Timer]


def holdable(push: Push) -> bool:
    """Whether quiet hours apply to ``push`` (see the module docstring)."""
    return (push.online and bool(push.shard) and not push.urgent and not push.recall
            and not push.released and push.message.kind != "data")


def held_shard(push: Push, until_ms: int, rids: list[str]) -> FanoutShard:
    """The fan-out shard that brings ``rids`` the push when their quiet hours end."""
    fanned = FanoutPush(app_id=push.app_id, task_id=push.task_id, msg_id=push.msg_id,
                        message=push.message, frame=push.frame, push_flag=push.push_flag,
                        expires_at_ms=push.expires_at_ms, urgent=push.urgent, released=True)
    return FanoutShard(fanned, f"{push.shard}.q{until_ms // 1000}", rids)


class QuietHoursHold:
    """Holds back, in each app's quiet hours, the devices of a batch's pushes."""

    def __init__(self, policies: PolicyCache) -> None:
        self._policies = policies

    async def hold(self, pushes: Sequence[Push], states: Sequence[DeviceState]) -> Quieted:
        """``pushes`` and their devices' ``states`` (in the order of the pushes' devices)
        without the devices in quiet hours, and the timers that release them."""
        candidates = {p.app_id for p in pushes if holdable(p) and p.registration_ids}
        if not candidates:
            return Quieted(list(pushes), list(states), [])
        policies = await self._policies.policies(candidates)
        windows = {app_id: policy.quiet_hours for app_id, policy in policies.items()
                   if policy is not None and policy.quiet_hours is not None}
        if not windows:
            return Quieted(list(pushes), list(states), [])
        now = now_ms()
        out = Quieted([], [], [])
        for push, push_states in per_push(pushes, states):
            window = windows.get(push.app_id) if holdable(push) else None
            if window is None:
                out.pushes.append(push)
                out.states.extend(push_states)
                continue
            kept, kept_states, held = _split(push, push_states, window, now)
            if held:
                timers = [Timer(f"q/{push.app_id}/{push.task_id}/{shard.shard}", until,
                                topics.FANOUT, f"{push.task_id}/{shard.shard}".encode(),
                                encode_internal(shard))
                          for until, shard in ((u, held_shard(push, u, rids))
                                               for u, rids in sorted(held.items()))]
                out.timers.extend(timers)
                if push.progress is not None:
                    push = dataclasses.replace(push, progress=dataclasses.replace(
                        push.progress, held=len(timers)))
                devices = sum(len(rids) for rids in held.values())
                metrics.HELD.labels(QUIET_HOURS).inc(devices)
                log.info("quiet hours hold", app_id=push.app_id, task_id=push.task_id,
                         devices=devices, until_ms=sorted(held))
            out.pushes.append(dataclasses.replace(push, registration_ids=kept))
            out.states.extend(kept_states)
        return out


def _split(push: Push, states: list[DeviceState], window: QuietHours, now: int
           ) -> tuple[list[str], list[DeviceState], dict[int, list[str]]]:
    """The devices to route now and their states; the held ones by the end of their quiet
    hours."""
    ends: dict[str, int | None] = {}
    kept: list[str] = []
    kept_states: list[DeviceState] = []
    held: dict[int, list[str]] = {}
    for rid, state in zip(push.registration_ids, states, strict=True):
        zone = device_zone(state.record.tz if state.record is not None else "", window)
        if zone not in ends:
            ends[zone] = quiet_until(now, zone, window)
        until = ends[zone]
        if until is None:
            kept.append(rid)
            kept_states.append(state)
        else:
            held.setdefault(until, []).append(rid)
    return kept, kept_states, held
