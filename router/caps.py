"""Frequency caps: the devices of a batch's pushes whose account has had its app's cap of
pushes for the period get none of them.

A push is capped unless it is urgent, a recall, a fallback (its devices were counted when it
was first routed) or a pass-through message (``kind == "data"``, which shows the user
nothing). Its devices are grouped by account (a device without one is its own,
``proto.policy.cap_subject``), and the whole batch claims its accounts in one round trip
(``PolicyStore.cap_take_many``), in the order of the batch, so pushes of one account are
counted in the order they came. A push counts once per account whatever number of its devices
or shards reach it, and a replayed shard finds its task counted already.

A held device is ``targeted`` (it is in the push's audience) and ``failed`` with reason
``frequency_capped``, its task's decisions count it under ``frequency_capped``, and
``herald_router_held_total{reason="frequency_capped"}`` counts it: devices, not accounts, as
every other routing count. App policies are read through ``PolicyCache``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import structlog

from herald.policy_store import CapTake, PolicyStore
from herald.store import DeviceState
from proto.events import Event, Reason, Stage, now_ms
from proto.policy import AppPolicy, FrequencyCap, cap_subject
from router import metrics
from router.decide import by_platform
from router.intake import Push, per_push

log = structlog.get_logger()

#: How long the router trusts an app's policy before reading it again: a policy change
#: applies within this time.
POLICY_CACHE_S = 2.0


class PolicyCache:
    """Apps' policies, each read again once it is ``ttl_s`` old; the apps of a batch that are
    not cached are read in one round trip."""

    def __init__(self, store: PolicyStore, ttl_s: float = POLICY_CACHE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._clock = clock
        self._cached: dict[str, tuple[float, AppPolicy | None]] = {}

    async def policies(self, app_ids: Iterable[str]) -> dict[str, AppPolicy | None]:
        """The policy of each app (None: it has none)."""
        now = self._clock()
        wanted = set(app_ids)
        stale = sorted(a for a in wanted if self._cached.get(a, (0.0, None))[0] <= now)
        if stale:
            for app_id, policy in zip(stale, await self._store.get_policies(stale),
                                      strict=True):
                self._cached[app_id] = (now + self._ttl_s, policy)
        return {a: self._cached[a][1] for a in wanted}


@dataclass(frozen=True, slots=True)
class Capped:
    """A batch's pushes and device states without the devices the cap holds back, and the
    events that say so."""

    pushes: list[Push]
    states: list[DeviceState]
    events: list[Event]


def cappable(push: Push) -> bool:
    """Whether the frequency cap applies to ``push`` (see the module docstring)."""
    return push.online and not push.urgent and not push.recall and push.message.kind != "data"


class Caps:
    """Applies each app's frequency cap to the pushes of a batch."""

    def __init__(self, store: PolicyStore, policies: PolicyCache) -> None:
        self._store = store
        self._policies = policies

    async def hold(self, pushes: Sequence[Push], states: Sequence[DeviceState]) -> Capped:
        """``pushes`` and their devices' ``states`` (in the order of the pushes' devices)
        without the devices whose account is over its app's cap."""
        candidates = [p for p in pushes if cappable(p) and p.registration_ids]
        if not candidates:
            return Capped(list(pushes), list(states), [])
        policies = await self._policies.policies(p.app_id for p in candidates)
        caps = {app_id: policy.frequency_cap for app_id, policy in policies.items()
                if policy is not None and policy.frequency_cap is not None}
        if not caps:
            return Capped(list(pushes), list(states), [])
        now = now_ms()
        slices: list[tuple[Push, list[DeviceState], list[str] | None]] = []
        takes: list[CapTake] = []
        for push, push_states in per_push(pushes, states):
            cap = caps.get(push.app_id) if cappable(push) else None
            subjects = (_subjects(push, push_states) if cap is not None and push_states
                        else None)
            slices.append((push, push_states, subjects))
            if subjects is not None:
                assert cap is not None
                takes.append(_take(push, cap, subjects, now))
        allowed = iter(await self._store.cap_take_many(takes))
        out = Capped([], [], [])
        for push, push_states, subjects in slices:
            if subjects is None:
                out.pushes.append(push)
                out.states.extend(push_states)
                continue
            refused = {s for s, ok in zip(dict.fromkeys(subjects), next(allowed), strict=True)
                       if not ok}
            kept, held = _split(push, push_states, subjects, refused)
            out.pushes.append(kept[0])
            out.states.extend(kept[1])
            if held[0]:
                out.events.extend(_held(push, *held, now))
                metrics.HELD.labels(Reason.FREQUENCY_CAPPED).inc(len(held[0]))
                log.info("frequency capped", app_id=push.app_id, task_id=push.task_id,
                         devices=len(held[0]), accounts=len(refused))
        return out


def _subjects(push: Push, states: Sequence[DeviceState]) -> list[str]:
    """Per device of ``push``, what the cap counts it as."""
    return [cap_subject(state.record.account if state.record is not None else "", rid)
            for rid, state in zip(push.registration_ids, states, strict=True)]


def _take(push: Push, cap: FrequencyCap, subjects: Sequence[str], now: int) -> CapTake:
    return CapTake(push.app_id, push.task_id, list(dict.fromkeys(subjects)), cap.count,
                   cap.period_s, now)


def _split(push: Push, states: Sequence[DeviceState], subjects: Sequence[str],
           refused: set[str]) -> tuple[tuple[Push, list[DeviceState]],
                                       tuple[list[str], list[DeviceState]]]:
    """(the push to its allowed devices, their states), (the held devices, their states)."""
    kept_rids: list[str] = []
    kept_states: list[DeviceState] = []
    held_rids: list[str] = []
    held_states: list[DeviceState] = []
    for rid, state, subject in zip(push.registration_ids, states, subjects, strict=True):
        if subject in refused:
            held_rids.append(rid)
            held_states.append(state)
        else:
            kept_rids.append(rid)
            kept_states.append(state)
    if not held_rids:
        return (push, kept_states), (held_rids, held_states)
    progress = push.progress
    if progress is not None:
        capped = {str(Reason.FREQUENCY_CAPPED): len(held_rids)}
        progress = dataclasses.replace(progress, decisions={**progress.decisions, **capped})
    kept = dataclasses.replace(push, registration_ids=kept_rids, progress=progress)
    return (kept, kept_states), (held_rids, held_states)


def _held(push: Push, rids: list[str], states: list[DeviceState], now: int) -> list[Event]:
    """``targeted`` by platform and one ``failed`` event for the held devices."""
    events = [Event(stage=Stage.TARGETED, task_id=push.task_id, app_id=push.app_id,
                    msg_id=push.msg_id, registration_ids=group, platform=platform, ts_ms=now)
              for platform, group in by_platform(rids, states).items()]
    events.append(Event(stage=Stage.FAILED, task_id=push.task_id, app_id=push.app_id,
                        msg_id=push.msg_id, registration_ids=rids,
                        reason=Reason.FREQUENCY_CAPPED, ts_ms=now))
    return events
