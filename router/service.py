"""The router's consume loop: decode, look presence up in batches, hand off, then commit.

It consumes two topics in one consumer group: ``push.requests`` (new pushes) and
``push.fallback`` (pushes a gateway could not deliver online, which go down the offline path
only).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

import structlog

from herald.backoff import Backoff
from herald.bus import Bus, Record, Subscription
from herald.runtime import dead_letter
from herald.settings import RouterSettings
from herald.store import Store
from proto import frames, topics
from proto.envelopes import (
    NodeDelivery,
    VendorJob,
    VendorTarget,
    decode_fallback,
    decode_push_request,
    encode_internal,
)
from proto.errors import DecodeError
from proto.events import Event, Reason, Stage, encode_event, now_ms
from proto.message import Message
from router import metrics
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


class Router:
    """Routes every device of every push it consumes."""

    def __init__(self, settings: RouterSettings, store: Store, bus: Bus) -> None:
        self.settings = settings
        self._store = store
        self._bus = bus
        self._backoff = Backoff(base_s=0.1, cap_s=5.0)
        self._alive: dict[str, tuple[float, bool]] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Route batches until ``stop`` is set; a failed batch is retried after a backoff."""
        sub: Subscription = await self._bus.subscribe([topics.REQUESTS, topics.FALLBACK],
                                                      topics.ROUTER_GROUP)
        failures = 0
        while not stop.is_set():
            try:
                async with sub.batch(timeout_ms=200,
                                     max_records=self.settings.batch_records) as records:
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
        """Route one batch and wait until every hand-off is stored."""
        pending: list[asyncio.Future[object]] = []
        pushes: list[_Push] = []
        for record in records:
            try:
                pushes.append(self._decode(record))
            except DecodeError as err:
                pending += await self._reject(record, err.reason)
        metrics.RECORDS.labels("ok").inc(len(pushes))
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
                pending += await self._to_vendor(push, vendor, targets)
            if plan.inbox:
                entries, futures = await self._to_inbox(push, plan.inbox)
                node_entries += entries
                pending += futures
            for rid, reason in plan.lost:
                pending.append(await self._event(Event(
                    stage=Stage.FAILED, task_id=push.task_id, app_id=push.app_id,
                    msg_id=push.msg_id, registration_id=rid, reason=reason, ts_ms=now_ms())))
            self._count(push, plan)
        await self._store.send_to_nodes(node_entries)
        await asyncio.gather(*pending)
        if pushes:
            log.info("handed off", task_ids=[p.task_id for p in pushes])

    def _decode(self, record: Record) -> _Push:
        if record.topic == topics.FALLBACK:
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
        req = decode_push_request(record.value)
        # The message id is the task id: a device sees one message per task, and a push
        # routed again (after a crash) carries the same id, so the device drops the copy.
        msg_id = req.task_id
        expires = now_ms() + req.lifetime_s * 1000 if req.lifetime_s else 0
        frame = frames.encode(frames.Push(mid=msg_id, task=req.task_id,
                                          msg=frames.message_map(req.message), ts=now_ms()))
        return _Push(req.app_id, req.task_id, msg_id, req.message, frame,
                     list(dict.fromkeys(req.registration_ids)), req.push_flag, expires,
                     Policy(req.push_flag, can_wait=bool(expires)), online=True)

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
