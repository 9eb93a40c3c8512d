"""The router's consume loops: decode, look presence up in batches, hand off, then commit.

One loop consumes ``push.requests`` (new pushes) and ``push.fallback`` (pushes a gateway
could not deliver online, which go down the offline path only) in the group
``herald-router``; the other consumes ``push.fanout`` (planning steps and shards of pushes to
resolved audiences, see ``router.fanout``) in ``herald-router-fanout``, in smaller batches,
since one shard carries a thousand devices. Both run every record through ``route``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import structlog

from herald.backoff import Backoff
from herald.bus import Bus, Record, Subscription
from herald.runtime import dead_letter
from herald.settings import RouterSettings
from herald.store import Store
from herald.task_store import Progress
from proto import frames, topics
from proto.audience import AudienceError, ResolvedAudience, validate_audience
from proto.envelopes import (
    FanoutPush,
    FanoutShard,
    FanoutStep,
    NodeDelivery,
    PushRequest,
    VendorJob,
    VendorTarget,
    decode_fallback,
    decode_fanout,
    decode_push_request,
    encode_internal,
)
from proto.errors import DecodeError
from proto.events import Event, Reason, Stage, encode_event, now_ms
from proto.message import Message
from router import fanout, metrics
from router.decide import Plan, Policy, decide

log = structlog.get_logger()

#: Devices looked up per Redis round trip.
_LOOKUP_CHUNK = 5000
#: How long the router trusts a node's liveness before asking Redis again.
_ALIVE_CACHE_S = 1.0
# Used only to attribute a rejected record to its task when the JSON is otherwise unusable.
_TASK_ID = re.compile(rb'"task_id"\s*:\s*"([A-Za-z0-9_.\-]{1,64})"')


@dataclass(frozen=True, slots=True)
class _Push:
    """One push to route, from a request or a fallback."""

    app_id: str
    task_id: str
    msg_id: str
    message: Message
    frame: bytes
    registration_ids: list[str]
    push_flag: int
    expires_at_ms: int
    policy: Policy
    #: False for fallbacks: the device was just not reachable online, so only offline paths.
    online: bool
    #: What routing this push does for its task (its decisions are added once made); None for
    #: fallbacks, whose devices were counted when they were first routed.
    progress: Progress | None = None

    @property
    def shard(self) -> str:
        """The name of the fan-out shard this push is; '' for a push routed whole (a direct
        push is its task's only step and shard, and is routed at once, in one batch)."""
        progress = self.progress
        return progress.shard if progress is not None and progress.step is None else ""


@dataclass(frozen=True, slots=True)
class _Start:
    """A push whose audience must be resolved before it fans out."""

    record: Record
    request: PushRequest
    push: FanoutPush


@dataclass(slots=True)
class _Work:
    """One batch, sorted: what to route, to plan, and to write once its hand-offs are stored."""

    pushes: list[_Push] = dataclasses.field(default_factory=list)
    starts: list[_Start] = dataclasses.field(default_factory=list)
    steps: list[FanoutStep] = dataclasses.field(default_factory=list)
    pending: list[asyncio.Future[object]] = dataclasses.field(default_factory=list)
    progress: list[Progress] = dataclasses.field(default_factory=list)
    #: Resolved audiences whose fan-out ended (exhausted or stopped), to delete at the end.
    ended: list[tuple[str, ResolvedAudience]] = dataclasses.field(default_factory=list)


class Router:
    """Routes every device of every push it consumes."""

    def __init__(self, settings: RouterSettings, store: Store, bus: Bus) -> None:
        self.settings = settings
        self._store = store
        self._bus = bus
        self._limits = settings.audience_limits()
        self._backoff = Backoff(base_s=0.1, cap_s=5.0)
        self._alive: dict[str, tuple[float, bool]] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Route batches of both loops until ``stop`` is set."""
        await asyncio.gather(
            self._consume([topics.REQUESTS, topics.FALLBACK], topics.ROUTER_GROUP,
                          self.settings.batch_records, stop),
            self._consume([topics.FANOUT], topics.FANOUT_GROUP, self.settings.fanout_batch,
                          stop))

    async def _consume(self, names: Sequence[str], group: str, max_records: int,
                       stop: asyncio.Event) -> None:
        """Route batches until ``stop`` is set; a failed batch is retried after a backoff."""
        sub: Subscription = await self._bus.subscribe(names, group)
        failures = 0
        while not stop.is_set():
            try:
                async with sub.batch(timeout_ms=200, max_records=max_records) as records:
                    if records:
                        with metrics.BATCH_SECONDS.time():
                            await self.route(records)
                failures = 0
            except Exception:
                failures += 1
                metrics.FAILURES.inc()
                log.exception("batch failed; it will be retried", attempt=failures)
                await asyncio.sleep(self._backoff.delay(failures))
        await sub.close()

    async def route(self, records: list[Record]) -> None:
        """Route one batch and wait until every hand-off is stored; then record what it did
        for each task."""
        work = _Work()
        for record in records:
            try:
                item = self._decode(record)
            except (DecodeError, AudienceError) as err:
                work.pending += await self._reject(record, str(err))
                continue
            metrics.RECORDS.labels("ok").inc()
            if isinstance(item, _Push):
                work.pushes.append(item)
            elif isinstance(item, _Start):
                work.starts.append(item)
            else:
                work.steps.append(item)
        await self._check_tasks(work)
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

    async def _check_tasks(self, work: _Work) -> None:
        """Drop what was done already or belongs to a stopped task, in one round trip: a
        fan-out request seen again, a step counted already, a shard routed already."""
        shards = [p for p in work.pushes if p.shard]
        queries = [*((s.push.app_id, s.push.task_id, "") for s in work.starts),
                   *((s.push.app_id, s.push.task_id, "") for s in work.steps),
                   *((p.app_id, p.task_id, p.shard) for p in shards)]
        if not queries:
            return
        marks = iter(await self._store.task_marks(queries))
        starts, steps, skipped = [], [], set()
        for start in work.starts:
            mark = next(marks)
            if mark.started or mark.stopped:
                metrics.FANOUT.labels("request", "stopped" if mark.stopped else "replayed").inc()
                log.info("fan-out request skipped", task_id=start.push.task_id,
                         app_id=start.push.app_id, stopped=mark.stopped)
            else:
                starts.append(start)
        for step in work.steps:
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
                metrics.FANOUT.labels("shard", "stopped" if mark.stopped else "replayed").inc()
                skipped.add(id(push))
        work.starts, work.steps = starts, steps
        work.pushes = [p for p in work.pushes if id(p) not in skipped]

    async def _start(self, work: _Work, start: _Start) -> None:
        """Resolve the audience in the store and publish the first planning step."""
        push = start.push
        assert start.request.audience is not None
        try:
            resolved = await self._store.resolve(push.app_id, start.request.audience, now_ms())
        except AudienceError as err:
            # An attribute that is not declared: only the store knows the declared names.
            work.pending += await self._reject(start.record, str(err))
            return
        first = FanoutStep(push, resolved, 0, 0)
        work.pending.append(await self._bus.publish(topics.FANOUT, encode_internal(first),
                                                    key=push.task_id.encode()))
        work.progress.append(Progress(push.app_id, push.task_id,
                                      audience=start.request.audience_kind()))
        log.info("fan-out started", task_id=push.task_id, app_id=push.app_id,
                 audience=start.request.audience_kind(), unit=resolved.unit)

    async def _plan(self, work: _Work, step: FanoutStep) -> None:
        """Cut the step's shards and publish them with the step that follows."""
        push = step.push
        result = await fanout.cut(self._store, step, self.settings.fanout_shard,
                                  self.settings.fanout_step)
        for shard in result.shards:
            work.pending.append(await self._bus.publish(
                topics.FANOUT, encode_internal(shard),
                key=f"{push.task_id}/{shard.shard}".encode()))
        if result.next is not None:
            work.pending.append(await self._bus.publish(
                topics.FANOUT, encode_internal(result.next), key=push.task_id.encode()))
        else:
            work.ended.append((push.app_id, step.resolved))
        work.progress.append(Progress(push.app_id, push.task_id, step=step.seq,
                                      shards=len(result.shards), devices=result.devices,
                                      last=result.next is None))
        metrics.FANOUT.labels("step", "done").inc()
        log.info("fan-out step", task_id=push.task_id, app_id=push.app_id, seq=step.seq,
                 shards=len(result.shards), devices=result.devices, last=result.next is None)

    async def _route_pushes(self, work: _Work) -> None:
        """Decide every device of the batch's pushes and hand each one off."""
        pushes = work.pushes
        devices = [(p.app_id, rid) for p in pushes for rid in p.registration_ids]
        states = []
        for start in range(0, len(devices), _LOOKUP_CHUNK):
            states += await self._store.lookup(devices[start:start + _LOOKUP_CHUNK])
        alive = await self._alive_nodes({s.presence.node for s in states if s.presence})
        node_entries: list[tuple[str, bytes]] = []
        offset = 0
        for push in pushes:
            count = len(push.registration_ids)
            plan = decide(push.policy, push.registration_ids, states[offset:offset + count],
                          alive if push.online else ())
            offset += count
            node_entries += self._node_entries(push, plan.nodes, in_inbox=False)
            for vendor, targets in plan.vendors.items():
                work.pending += await self._to_vendor(push, vendor, targets)
            if plan.inbox:
                entries, futures = await self._to_inbox(push, plan.inbox)
                node_entries += entries
                work.pending += futures
            for rid, reason in plan.lost:
                work.pending.append(await self._event(Event(
                    stage=Stage.FAILED, task_id=push.task_id, app_id=push.app_id,
                    msg_id=push.msg_id, registration_id=rid, reason=reason, ts_ms=now_ms())))
            if push.progress is not None:
                work.progress.append(dataclasses.replace(
                    push.progress, decisions={str(d): n for d, n in plan.counts.items()}))
            if push.shard:
                metrics.FANOUT.labels("shard", "done").inc()
            self._count(push, plan)
        await self._store.send_to_nodes(node_entries)

    def _decode(self, record: Record) -> _Push | _Start | FanoutStep:
        if record.topic == topics.FANOUT:
            item = decode_fanout(record.value)
            return self._shard(item) if isinstance(item, FanoutShard) else item
        if record.topic == topics.FALLBACK:
            return self._fallback(record)
        req = decode_push_request(record.value)
        if req.audience is not None:
            validate_audience(req.audience, self._limits)
        # The message id is the task id: a device sees one message per task, and a push
        # routed again (after a crash) carries the same id, so the device drops the copy.
        msg_id = req.task_id
        expires = now_ms() + req.lifetime_s * 1000 if req.lifetime_s else 0
        frame = frames.encode(frames.Push(mid=msg_id, task=req.task_id,
                                          msg=frames.message_map(req.message), ts=now_ms()))
        targets = req.targets()
        if targets is None:
            return _Start(record, req, FanoutPush(app_id=req.app_id, task_id=req.task_id,
                                          msg_id=msg_id, message=req.message, frame=frame,
                                          push_flag=req.push_flag, expires_at_ms=expires))
        rids = list(dict.fromkeys(targets))
        progress = Progress(req.app_id, req.task_id, audience=req.audience_kind(), step=0,
                            shards=1, devices=len(rids), last=True, shard="0")
        return _Push(req.app_id, req.task_id, msg_id, req.message, frame, rids, req.push_flag,
                     expires, Policy(req.push_flag, can_wait=bool(expires)), online=True,
                     progress=progress)

    def _fallback(self, record: Record) -> _Push:
        fallback = decode_fallback(record.value)
        push = frames.decode_server(fallback.frame)
        if not isinstance(push, frames.Push):
            raise DecodeError("fallback frame is not a PUSH")
        alive = fallback.expires_at_ms > now_ms()
        reason = fallback.reason if alive or not fallback.expires_at_ms else Reason.EXPIRED
        return _Push(fallback.app_id, fallback.task_id, fallback.msg_id,
                     frames.message_of(push), fallback.frame,
                     list(dict.fromkeys(fallback.registration_ids)), fallback.push_flag,
                     fallback.expires_at_ms,
                     Policy(fallback.push_flag, can_wait=alive, lost_reason=reason),
                     online=False)

    @staticmethod
    def _shard(shard: FanoutShard) -> _Push:
        push = shard.push
        return _Push(push.app_id, push.task_id, push.msg_id, push.message, push.frame,
                     shard.registration_ids, push.push_flag, push.expires_at_ms,
                     Policy(push.push_flag, can_wait=push.expires_at_ms > now_ms()),
                     online=True, progress=Progress(push.app_id, push.task_id,
                                                    shard=shard.shard))

    async def _alive_nodes(self, nodes: Iterable[str]) -> set[str]:
        """The live nodes among ``nodes``, from a cache refreshed once a second."""
        now = time.monotonic()
        stale = [n for n in nodes if self._alive.get(n, (0.0, False))[0] < now]
        if stale:
            for node, alive in zip(stale, await self._store.nodes_alive(stale), strict=True):
                self._alive[node] = (now + _ALIVE_CACHE_S, alive)
        return {n for n in nodes if self._alive[n][1]}

    def _node_entries(self, push: _Push, nodes: dict[str, list[str]], *,
                      in_inbox: bool) -> list[tuple[str, bytes]]:
        return [(node, encode_internal(NodeDelivery(
            push.app_id, push.task_id, push.msg_id, push.frame, rids,
            push_flag=push.push_flag, expires_at_ms=push.expires_at_ms, in_inbox=in_inbox)))
            for node, rids in nodes.items()]

    async def _to_vendor(self, push: _Push, vendor: str,
                         targets: list[VendorTarget]) -> list[asyncio.Future[object]]:
        size = self.settings.vendor_batch
        futures = []
        for start in range(0, len(targets), size):
            job = VendorJob(app_id=push.app_id, task_id=push.task_id, msg_id=push.msg_id,
                            message=push.message, targets=targets[start:start + size],
                            expires_at_ms=push.expires_at_ms)
            futures.append(await self._bus.publish(topics.vendor_topic(vendor),
                                                   encode_internal(job),
                                                   key=push.task_id.encode()))
        return futures

    async def _to_inbox(self, push: _Push, rids: list[str]
                        ) -> tuple[list[tuple[str, bytes]], list[asyncio.Future[object]]]:
        """Store the push in the devices' offline inboxes, then look once more: a device that
        connected meanwhile may have drained its inbox already, so it gets the push online too
        (its ACK removes the inbox copy; the device drops a duplicate by message id)."""
        evicted = await self._store.inbox_store(push.app_id, push.msg_id, push.frame,
                                                push.expires_at_ms, rids,
                                                self.settings.inbox_max)
        futures = []
        metrics.INBOX.labels("stored").inc(len(rids))
        for rid, gone in zip(rids, evicted, strict=True):
            metrics.INBOX.labels("evicted").inc(len(gone))
            futures.append(await self._event(Event(
                stage=Stage.STORED, task_id=push.task_id, app_id=push.app_id,
                msg_id=push.msg_id, registration_id=rid, ts_ms=now_ms())))
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

    def _count(self, push: _Push, plan: Plan) -> None:
        for decision, count in plan.counts.items():
            metrics.DECISIONS.labels(decision).inc(count)
        log.info("routing", task_id=push.task_id, app_id=push.app_id, fallback=not push.online,
                 **{str(d): n for d, n in plan.counts.items()})

    async def _reject(self, record: Record, reason: str) -> list[asyncio.Future[object]]:
        metrics.RECORDS.labels("dead_letter").inc()
        found = _TASK_ID.search(record.value)
        task_id = found.group(1).decode() if found else ""
        log.warning("record rejected", task_id=task_id, reason=reason,
                    source=f"{record.topic}/{record.partition}/{record.offset}")
        futures = [await dead_letter(self._bus, record, reason)]
        if task_id:
            event = Event(stage=Stage.REJECTED, task_id=task_id, reason=Reason.INVALID_REQUEST,
                          detail=reason[:500], ts_ms=now_ms())
            futures.append(await self._event(event))
        return futures

    async def _event(self, event: Event) -> asyncio.Future[object]:
        return await self._bus.publish(topics.EVENTS, encode_event(event),
                                       key=event.task_id.encode())
