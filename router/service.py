"""The router's consume loops: decode, look presence up in batches, hand off, then commit.

One loop consumes ``push.requests`` (new pushes), ``push.fallback`` (pushes a gateway
could not deliver online, which go down the offline path only) and ``push.recalls`` in the
group ``herald-router``; the other consumes ``push.fanout`` (planning steps and shards of pushes to
resolved audiences, see ``router.fanout``) in ``herald-router-fanout``, in smaller batches,
since one shard carries a thousand devices. Both run every record through ``route``. Beside
them, the timer loop (``router.timers``) publishes what waits for its time: scheduled requests,
paced shards (``router.pacing``) and shards held through quiet hours (``router.quiet``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import msgspec
import structlog

from herald.bus import Bus, Record
from herald.runtime import consume, dead_letter
from herald.settings import RouterSettings
from herald.store import DeviceState, Store
from herald.task_store import Progress
from herald.timer_store import Timer, schedule_timer_id
from proto import frames, topics
from proto.audience import Audience, AudienceError, ResolvedAudience
from proto.envelopes import (
    FanoutPush,
    FanoutStep,
    NodeDelivery,
    NodeRecall,
    RecallRequest,
    VendorJob,
    VendorTarget,
    encode_internal,
    recall_message,
)
from proto.errors import DecodeError
from proto.events import Channel, Event, Reason, Stage, encode_event, now_ms
from proto.limits import IDEMPOTENCY_TTL_S
from proto.templates import TemplateError
from router import caps, fanout, metrics, pacing, templating
from router.decide import Plan, Policy, by_platform, decide, take_back
from router.intake import Later, Push, Start, by_language, decode, target_of
from router.quiet import QuietHoursHold
from router.timers import TimerLoop, count_set

log = structlog.get_logger()
T = TypeVar("T")

#: Devices looked up per Redis round trip.
_LOOKUP_CHUNK = 5000
#: How long the router trusts a node's liveness before asking Redis again.
_ALIVE_CACHE_S = 1.0
# Used only to attribute a rejected record to its task when the JSON is otherwise unusable.
_TASK_ID = re.compile(rb'"task_id"\s*:\s*"([A-Za-z0-9_.\-]{1,64})"')
_APP_ID = re.compile(rb'"app_id"\s*:\s*"([A-Za-z0-9_.\-]{1,64})"')


def _field(pattern: re.Pattern[bytes], value: bytes) -> str:
    found = pattern.search(value)
    return found.group(1).decode() if found else ""


@dataclass(slots=True)
class _Work:
    """One batch, sorted: what to route, to plan, and to write once its hand-offs are stored."""

    pushes: list[Push] = dataclasses.field(default_factory=list)
    starts: list[Start] = dataclasses.field(default_factory=list)
    later: list[Later] = dataclasses.field(default_factory=list)
    steps: list[FanoutStep] = dataclasses.field(default_factory=list)
    recalls: list[RecallRequest] = dataclasses.field(default_factory=list)
    pending: list[asyncio.Future[object]] = dataclasses.field(default_factory=list)
    progress: list[Progress] = dataclasses.field(default_factory=list)
    #: Resolved audiences whose fan-out ended (exhausted or stopped), to delete at the end.
    ended: list[tuple[str, ResolvedAudience]] = dataclasses.field(default_factory=list)


def _first(items: list[T], key: Callable[[T], Hashable], kind: Callable[[T], str]) -> list[T]:
    """``items`` without those whose key an earlier one had, in order; each copy dropped
    counts as a replay of its ``kind`` (as a replay in a later batch does)."""
    seen: set[Hashable] = set()
    kept = []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            kept.append(item)
        else:
            metrics.FANOUT.labels(kind(item), "replayed").inc()
    return kept


class Router:
    """Routes every device of every push it consumes."""

    def __init__(self, settings: RouterSettings, store: Store, bus: Bus) -> None:
        self.settings = settings
        self._store = store
        self._bus = bus
        self._limits = settings.audience_limits()
        self._alive: dict[str, tuple[float, bool]] = {}
        policies = caps.PolicyCache(store)
        self._caps = caps.Caps(store, policies)
        self._quiet = QuietHoursHold(policies)

    async def run(self, stop: asyncio.Event) -> None:
        """Route batches of both loops until ``stop`` is set."""
        watched = {"seconds": metrics.BATCH_SECONDS, "failures": metrics.FAILURES}
        timers = TimerLoop(self._store, self._bus, batch=self.settings.timer_batch,
                           lease_ms=self.settings.timer_lease_ms,
                           tick_s=self.settings.timer_tick_s)
        await asyncio.gather(
            timers.run(stop),
            consume(self._bus, [topics.REQUESTS, topics.FALLBACK, topics.RECALLS],
                    topics.ROUTER_GROUP, self.settings.batch_records, self.route, stop,
                    **watched),
            consume(self._bus, [topics.FANOUT], topics.FANOUT_GROUP, self.settings.fanout_batch,
                    self.route, stop, **watched))

    async def route(self, records: list[Record]) -> None:
        """Route one batch and wait until every hand-off is stored; then record what it did
        for each task."""
        work = _Work()
        templates = await templating.fetch(self._store, records)
        for record in records:
            try:
                item = decode(record, self._limits, templates)
            except (DecodeError, AudienceError, TemplateError) as err:
                work.pending += await self._reject(record, str(err))
                continue
            metrics.RECORDS.labels("ok").inc()
            if isinstance(item, Push):
                work.pushes.append(item)
            elif isinstance(item, Start):
                work.starts.append(item)
            elif isinstance(item, Later):
                work.later.append(item)
            elif isinstance(item, RecallRequest):
                work.recalls.append(item)
            else:
                work.steps.append(item)
        await self._claim_keys(work)
        await self._check_tasks(work)
        for recall in work.recalls:
            await self._recall(work, recall)
        for later in work.later:
            await self._schedule(later)
        for start in work.starts:
            await self._start(work, start)
        for step in work.steps:
            await self._plan(work, step)
        await self._route_pushes(work)
        await asyncio.gather(*work.pending)
        await self._store.record_progress(work.progress, now_ms())
        for app_id, resolved in work.ended:
            await self._store.discard(app_id, resolved)
        if work.pushes:
            log.info("handed off", task_ids=[p.task_id for p in work.pushes])

    async def _claim_keys(self, work: _Work) -> None:
        """Drop the requests whose idempotency key another task of their app holds (a request
        repeated under a new task id), in one round trip; the others take their key."""
        keyed = [(p.app_id, p.idempotency_key, p.task_id, p) for p in work.pushes
                 if p.idempotency_key]
        keyed += [(s.push.app_id, s.request.idempotency_key, s.push.task_id, s)
                  for s in work.starts if s.request.idempotency_key]
        keyed += [(s.request.app_id, s.request.idempotency_key, s.request.task_id, s)
                  for s in work.later if s.request.idempotency_key]
        if not keyed:
            return
        holders = await self._store.claim_idempotency([k[:3] for k in keyed],
                                                      IDEMPOTENCY_TTL_S)
        repeated = set()
        for (app_id, key, task_id, item), holder in zip(keyed, holders, strict=True):
            if holder != task_id:
                repeated.add(id(item))
                metrics.RECORDS.labels("repeated").inc()
                log.info("request repeats a task", task_id=task_id, app_id=app_id,
                         idempotency_key=key, first_task_id=holder)
        work.pushes = [p for p in work.pushes if id(p) not in repeated]
        work.starts = [s for s in work.starts if id(s) not in repeated]
        work.later = [s for s in work.later if id(s) not in repeated]

    async def _check_tasks(self, work: _Work) -> None:
        """Drop what was done already or belongs to a stopped (or recalled) task, in one round
        trip: a fan-out request seen again, a step counted already, a shard or a direct push
        routed already; and the second copy of any of them within the batch (a replay next to
        its original). A recall's own steps and shards are not checked (``router.intake``)."""
        work.starts = _first(work.starts, lambda s: (s.push.app_id, s.push.task_id),
                             lambda _: "request")
        work.steps = _first(work.steps, lambda s: (s.push.app_id, s.push.task_id, s.seq)
                            if not s.push.recall else id(s), lambda _: "step")
        work.pushes = _first(work.pushes, lambda p: (p.app_id, p.task_id, p.shard)
                             if p.shard else id(p), lambda p: p.kind)
        checked = [s for s in work.steps if not s.push.recall]
        shards = [p for p in work.pushes if p.shard]
        queries = [*((s.push.app_id, s.push.task_id, "") for s in work.starts),
                   *((s.push.app_id, s.push.task_id, "") for s in checked),
                   *((p.app_id, p.task_id, p.shard) for p in shards)]
        if not queries:
            return
        marks = iter(await self._store.task_marks(queries))
        starts, steps, skipped = [], [s for s in work.steps if s.push.recall], set()
        for start in work.starts:
            mark = next(marks)
            if mark.started or mark.stopped:
                metrics.FANOUT.labels("request", "stopped" if mark.stopped else "replayed").inc()
                log.info("fan-out request skipped", task_id=start.push.task_id,
                         app_id=start.push.app_id, stopped=mark.stopped)
            else:
                starts.append(start)
        for step in checked:
            mark = next(marks)
            if mark.stopped:
                metrics.FANOUT.labels("step", "stopped").inc()
                work.ended.append((step.push.app_id, step.resolved))
            elif step.seq <= mark.step:
                metrics.FANOUT.labels("step", "replayed").inc()
            else:
                steps.append(step)
        for push in shards:
            mark = next(marks)
            if mark.stopped or mark.shard_done:
                metrics.FANOUT.labels(push.kind, "stopped" if mark.stopped else "replayed").inc()
                skipped.add(id(push))
        work.starts, work.steps = starts, steps
        work.pushes = [p for p in work.pushes if id(p) not in skipped]

    async def _schedule(self, later: Later) -> None:
        """Keep a push for its send time: the request, as it came, is published again then
        (``router.timers``) and routed like any other."""
        req = later.request
        assert req.send_at_ms is not None
        timer = Timer(schedule_timer_id(req.app_id, req.task_id), req.send_at_ms,
                      topics.REQUESTS, later.record.key or req.task_id.encode(),
                      later.record.value)
        await self._store.schedule_push(req.app_id, req.task_id, timer)
        count_set([timer])
        log.info("push scheduled", task_id=req.task_id, app_id=req.app_id,
                 send_at_ms=req.send_at_ms)

    async def _start(self, work: _Work, start: Start) -> None:
        """Resolve the audience in the store and publish the first planning step."""
        push = start.push
        audience = start.request.audience or Audience(
            registration_ids=start.request.registration_ids)
        try:
            resolved = await self._store.resolve(push.app_id, audience, now_ms())
        except AudienceError as err:
            # An attribute that is not declared: only the store knows the declared names.
            work.pending += await self._reject(start.record, str(err))
            return
        first = FanoutStep(push, resolved, 0, 0)
        work.pending.append(await self._bus.publish(topics.FANOUT, encode_internal(first),
                                                    key=push.task_id.encode()))
        work.progress.append(Progress(push.app_id, push.task_id,
                                      audience=start.request.audience_kind(),
                                      target=target_of(start.request)))
        log.info("fan-out started", task_id=push.task_id, app_id=push.app_id,
                 audience=start.request.audience_kind(), unit=resolved.unit)

    async def _recall(self, work: _Work, recall: RecallRequest) -> None:
        """Take a task back: empty the offline inboxes that hold it, then reach its audience
        again with the RECALL frame (online) and a revoke or replacement (vendors), at once
        for listed devices, else through a fan-out of its own. The task is marked recalled
        already (by whoever accepted the recall), which stops what is left of its fan-out."""
        app_id, task_id = recall.app_id, recall.task_id
        target = await self._store.task_target(app_id, task_id)
        if target is None:
            # Not routed yet: the recalled mark drops it when it comes.
            metrics.RECALLS.labels("not_started").inc()
            log.info("recall before routing", task_id=task_id, app_id=app_id)
            return
        audience = msgspec.json.decode(target, type=Audience)
        purged = await self._store.inbox_purge(app_id, task_id)
        if purged:
            work.pending.append(await self._event(Event(
                stage=Stage.RECALLED, task_id=task_id, app_id=app_id, msg_id=task_id,
                registration_ids=purged, channel=Channel.INBOX, ts_ms=now_ms())))
        push = FanoutPush(app_id=app_id, task_id=task_id, msg_id=task_id,
                          message=recall.message or recall_message(task_id),
                          frame=frames.encode(frames.Recall(mid=task_id)), push_flag=0,
                          recall=True, replace=recall.message is not None)
        metrics.RECALLS.labels("started").inc()
        log.info("recall started", task_id=task_id, app_id=app_id, inbox=len(purged),
                 audience=audience.kind())
        if audience.registration_ids:
            work.pushes.append(Push(app_id, task_id, task_id, push.message, push.frame,
                                    audience.registration_ids, 0, 0, Policy(0, can_wait=False),
                                    online=True, recall=True, replace=push.replace))
            return
        resolved = await self._store.resolve(app_id, audience, now_ms())
        work.pending.append(await self._bus.publish(
            topics.FANOUT, encode_internal(FanoutStep(push, resolved, 0, 0)),
            key=task_id.encode()))

    async def _plan(self, work: _Work, step: FanoutStep) -> None:
        """Cut the step's shards and publish them with the step that follows."""
        push = step.push
        size = self.settings.fanout_shard
        if push.speed:
            size = pacing.shard_size(push.speed, size)
        result = await fanout.cut(self._store, step, size, self.settings.fanout_step)
        later: list[Timer] = []
        before = step.before
        for shard in result.shards:
            await self._publish_at(work, later, push, shard.shard, pacing.due_ms(push, before)
                                   if push.speed else 0, encode_internal(shard),
                                   f"{push.task_id}/{shard.shard}".encode())
            before += len(shard.registration_ids)
        if result.next is not None:
            due = (pacing.due_ms(push, result.next.before) - pacing.PLAN_LEAD_MS
                   if push.speed else 0)
            await self._publish_at(work, later, push, f"s{result.next.seq}", due,
                                   encode_internal(result.next), push.task_id.encode())
        else:
            work.ended.append((push.app_id, step.resolved))
        # Before the step counts: a replayed step adds the same timers, which change nothing.
        await self._store.timers_add(later)
        count_set(later)
        if not push.recall:
            work.progress.append(Progress(push.app_id, push.task_id, step=step.seq,
                                          shards=len(result.shards), devices=result.devices,
                                          last=result.next is None))
        metrics.FANOUT.labels("step", "done").inc()
        log.info("fan-out step", task_id=push.task_id, app_id=push.app_id, seq=step.seq,
                 shards=len(result.shards), devices=result.devices, last=result.next is None)

    async def _publish_at(self, work: _Work, later: list[Timer], push: FanoutPush, name: str,
                          due_ms: int, value: bytes, key: bytes) -> None:
        """Publish a fan-out record now, or add it to ``later`` if it is due later."""
        if due_ms > now_ms():
            later.append(Timer(pacing.timer_id(push, name), due_ms, topics.FANOUT, key, value))
        else:
            work.pending.append(await self._bus.publish(topics.FANOUT, value, key=key))

    async def _route_pushes(self, work: _Work) -> None:
        """Decide every device of the batch's pushes and hand each one off."""
        pushes = work.pushes
        devices = [(p.app_id, rid) for p in pushes for rid in p.registration_ids]
        states = []
        for start in range(0, len(devices), _LOOKUP_CHUNK):
            states += await self._store.lookup(devices[start:start + _LOOKUP_CHUNK])
        quieted = await self._quiet.hold(pushes, states)
        pushes, states = quieted.pushes, quieted.states
        await self._store.timers_add(quieted.timers)
        count_set(quieted.timers)
        capped = await self._caps.hold(pushes, states)
        pushes, states = capped.pushes, capped.states
        work.pending += [await self._event(event) for event in capped.events]
        alive = await self._alive_nodes({s.presence.node for s in states if s.presence})
        node_entries: list[tuple[str, bytes]] = []
        offset = 0
        for push in pushes:
            count = len(push.registration_ids)
            push_states = states[offset:offset + count]
            if push.recall:
                offset += count
                node_entries += await self._take_back(work, push, push_states, alive)
                continue
            offset += count
            decisions: dict[str, int] = {}
            # One part per language the push's devices get it in (one part without languages).
            for part, part_states in by_language(push, push_states):
                plan = decide(part.policy, part.registration_ids, part_states,
                              alive if part.online else ())
                node_entries += await self._hand_off(work, part, part_states, plan)
                for decision, n in plan.counts.items():
                    decisions[str(decision)] = decisions.get(str(decision), 0) + n
                self._count(part, plan)
            if push.progress is not None:
                # With the devices decided before routing (held back by the cap).
                work.progress.append(dataclasses.replace(
                    push.progress, decisions={**push.progress.decisions, **decisions}))
            if push.shard:
                metrics.FANOUT.labels(push.kind, "done").inc()
        await self._store.send_to_nodes(node_entries)

    async def _hand_off(self, work: _Work, push: Push, states: Sequence[DeviceState],
                        plan: Plan) -> list[tuple[str, bytes]]:
        """Hand each device of ``plan`` to its channel; the node entries to send."""
        if push.progress is not None:
            # The devices' first decision: where the task's funnel starts. Fallbacks are
            # second attempts for devices counted already.
            work.pending += await self._funnel(push, states, plan)
        node_entries = self._node_entries(push, plan.nodes, in_inbox=False)
        for vendor, targets in plan.vendors.items():
            work.pending += await self._to_vendor(push, vendor, targets)
        if plan.inbox:
            entries, futures = await self._to_inbox(push, plan.inbox)
            node_entries += entries
            work.pending += futures
        lost: dict[str, list[str]] = {}
        for rid, reason in plan.lost:
            lost.setdefault(reason, []).append(rid)
        for reason, rids in lost.items():
            work.pending.append(await self._event(Event(
                stage=Stage.FAILED, task_id=push.task_id, app_id=push.app_id,
                msg_id=push.msg_id, registration_ids=rids, reason=reason, ts_ms=now_ms())))
        return node_entries

    async def _take_back(self, work: _Work, push: Push, states: Sequence[DeviceState],
                         alive: set[str]) -> list[tuple[str, bytes]]:
        """A recall's devices: a RECALL frame to those online, a recall job to each vendor
        for the others; the node entries to send."""
        nodes, vendors = take_back(push.registration_ids, states, alive)
        for vendor, targets in vendors.items():
            work.pending += await self._to_vendor(push, vendor, targets)
        return [(node, encode_internal(NodeRecall(push.app_id, push.msg_id, rids)))
                for node, rids in nodes.items()]

    async def _funnel(self, push: Push, states: Sequence[DeviceState],
                      plan: Plan) -> list[asyncio.Future[object]]:
        """``targeted`` events by platform, and ``sendable`` events by channel: one event for
        each group of devices, not one per device."""
        targeted = by_platform(push.registration_ids, states)
        sendable = plan.sendable()
        ts = now_ms()
        events = [Event(stage=Stage.TARGETED, task_id=push.task_id, app_id=push.app_id,
                        msg_id=push.msg_id, registration_ids=rids, platform=platform,
                        ts_ms=ts) for platform, rids in targeted.items()]
        events += [Event(stage=Stage.SENDABLE, task_id=push.task_id, app_id=push.app_id,
                         msg_id=push.msg_id, registration_ids=rids, channel=channel, ts_ms=ts)
                   for channel, rids in sendable.items() if rids]
        return [await self._event(event) for event in events]

    async def _alive_nodes(self, nodes: Iterable[str]) -> set[str]:
        """The live nodes among ``nodes``, from a cache refreshed once a second."""
        now = time.monotonic()
        stale = [n for n in nodes if self._alive.get(n, (0.0, False))[0] < now]
        if stale:
            for node, alive in zip(stale, await self._store.nodes_alive(stale), strict=True):
                self._alive[node] = (now + _ALIVE_CACHE_S, alive)
        return {n for n in nodes if self._alive[n][1]}

    def _node_entries(self, push: Push, nodes: dict[str, list[str]], *,
                      in_inbox: bool) -> list[tuple[str, bytes]]:
        return [(node, encode_internal(NodeDelivery(
            push.app_id, push.task_id, push.msg_id, push.frame, rids,
            push_flag=push.push_flag, expires_at_ms=push.expires_at_ms, in_inbox=in_inbox)))
            for node, rids in nodes.items()]

    async def _to_vendor(self, push: Push, vendor: str,
                         targets: list[VendorTarget]) -> list[asyncio.Future[object]]:
        size = self.settings.vendor_batch
        futures = []
        for start in range(0, len(targets), size):
            job = VendorJob(app_id=push.app_id, task_id=push.task_id, msg_id=push.msg_id,
                            message=push.message, targets=targets[start:start + size],
                            expires_at_ms=push.expires_at_ms, recall=push.recall,
                            replace=push.replace)
            futures.append(await self._bus.publish(topics.vendor_topic(vendor),
                                                   encode_internal(job),
                                                   key=push.task_id.encode()))
        return futures

    async def _to_inbox(self, push: Push, rids: list[str]
                        ) -> tuple[list[tuple[str, bytes]], list[asyncio.Future[object]]]:
        """Store the push in the devices' offline inboxes, then look once more: a device that
        connected meanwhile may have drained its inbox already, so it gets the push online too
        (its ACK removes the inbox copy; the device drops a duplicate by message id)."""
        evicted = await self._store.inbox_store(push.app_id, push.msg_id, push.frame,
                                                push.expires_at_ms, rids,
                                                self.settings.inbox_max)
        futures = []
        metrics.INBOX.labels("stored").inc(len(rids))
        futures.append(await self._event(Event(
            stage=Stage.STORED, task_id=push.task_id, app_id=push.app_id, msg_id=push.msg_id,
            registration_ids=rids, channel=Channel.INBOX, ts_ms=now_ms())))
        for rid, gone in zip(rids, evicted, strict=True):
            metrics.INBOX.labels("evicted").inc(len(gone))
            for msg_id in gone:
                futures.append(await self._event(Event(
                    stage=Stage.FAILED, task_id=msg_id, app_id=push.app_id, msg_id=msg_id,
                    registration_id=rid, reason=Reason.INBOX_EVICTED, ts_ms=now_ms())))
        states = await self._store.lookup([(push.app_id, rid) for rid in rids])
        alive = await self._alive_nodes({s.presence.node for s in states if s.presence})
        online: dict[str, list[str]] = {}
        for rid, state in zip(rids, states, strict=True):
            if state.presence is not None and state.presence.node in alive:
                online.setdefault(state.presence.node, []).append(rid)
        return self._node_entries(push, online, in_inbox=True), futures

    def _count(self, push: Push, plan: Plan) -> None:
        for decision, count in plan.counts.items():
            metrics.DECISIONS.labels(decision).inc(count)
        log.info("routing", task_id=push.task_id, app_id=push.app_id, fallback=not push.online,
                 **{str(d): n for d, n in plan.counts.items()})

    async def _reject(self, record: Record, reason: str) -> list[asyncio.Future[object]]:
        """Dead-letter ``record``; if its task and app can be read from it and the app exists,
        a ``rejected`` event for the task and the reason in its record (its status says it)."""
        metrics.RECORDS.labels("dead_letter").inc()
        task_id, app_id = (_field(pattern, record.value) for pattern in (_TASK_ID, _APP_ID))
        log.warning("record rejected", task_id=task_id, app_id=app_id, reason=reason,
                    source=f"{record.topic}/{record.partition}/{record.offset}")
        futures = [await dead_letter(self._bus, record, reason)]
        if not task_id:
            return futures
        if app_id and await self._store.get_app(app_id) is not None:
            await self._store.reject_task(app_id, task_id, reason[:500], now_ms())
        else:
            app_id = ""
        event = Event(stage=Stage.REJECTED, task_id=task_id, app_id=app_id,
                      reason=Reason.INVALID_REQUEST, detail=reason[:500], ts_ms=now_ms())
        futures.append(await self._event(event))
        return futures

    async def _event(self, event: Event) -> asyncio.Future[object]:
        return await self._bus.publish(topics.EVENTS, encode_event(event),
                                       key=event.task_id.encode())
