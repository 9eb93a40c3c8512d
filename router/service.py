"""The router's consume loop: decode, look up presence in batches, hand off, then commit."""

from __future__ import annotations

import asyncio
import re

import structlog

from herald.backoff import Backoff
from herald.bus import Bus, Record, Subscription
from herald.runtime import dead_letter
from herald.settings import RouterSettings
from herald.store import Store
from proto import frames, topics
from proto.envelopes import (
    NodeDelivery,
    PushRequest,
    VendorJob,
    decode_push_request,
    encode_internal,
)
from proto.errors import DecodeError
from proto.events import Event, Reason, Stage, encode_event, now_ms
from router import metrics
from router.decide import decide

log = structlog.get_logger()

#: Devices looked up per Redis round trip.
_LOOKUP_CHUNK = 5000
# Used only to attribute a rejected record to its task when the JSON is otherwise unusable.
_TASK_ID = re.compile(rb'"task_id"\s*:\s*"([A-Za-z0-9_.\-]{1,64})"')


class Router:
    """Consumes ``push.requests`` and routes every device of every request."""

    def __init__(self, settings: RouterSettings, store: Store, bus: Bus) -> None:
        self.settings = settings
        self._store = store
        self._bus = bus
        self._backoff = Backoff(base_s=0.1, cap_s=5.0)

    async def run(self, stop: asyncio.Event) -> None:
        """Route batches until ``stop`` is set; a failed batch is retried after a backoff."""
        sub: Subscription = await self._bus.subscribe([topics.REQUESTS], topics.ROUTER_GROUP)
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
        requests: list[PushRequest] = []
        for record in records:
            try:
                requests.append(decode_push_request(record.value))
            except DecodeError as err:
                pending += await self._reject(record, err.reason)
        metrics.RECORDS.labels("ok").inc(len(requests))
        devices = [(req.app_id, rid) for req in requests
                   for rid in dict.fromkeys(req.registration_ids)]
        states = []
        for start in range(0, len(devices), _LOOKUP_CHUNK):
            states += await self._store.lookup(devices[start:start + _LOOKUP_CHUNK])
        node_entries: list[tuple[str, bytes]] = []
        offset = 0
        for req in requests:
            rids = list(dict.fromkeys(req.registration_ids))
            plan = decide(req, rids, states[offset:offset + len(rids)])
            offset += len(rids)
            # The message id is the task id: a device sees one message per task, and a
            # re-routed task (after a crash) carries the same id, so the device dedupes it.
            msg_id = req.task_id
            if plan.nodes:
                message = req.message
                frame = frames.encode(frames.Push(mid=msg_id, task=req.task_id, kind=message.kind,
                                                  title=message.title, body=message.body,
                                                  data=message.data, ts_ms=now_ms()))
                for node, node_rids in plan.nodes.items():
                    entry = NodeDelivery(req.app_id, req.task_id, msg_id, frame, node_rids)
                    node_entries.append((node, encode_internal(entry)))
            for vendor, targets in plan.vendors.items():
                pending += await self._to_vendor(req, msg_id, vendor, targets)
            for rid, reason in plan.lost:
                event = Event(stage=Stage.FAILED, task_id=req.task_id, app_id=req.app_id,
                              msg_id=msg_id, registration_id=rid, reason=reason, ts_ms=now_ms())
                pending.append(await self._event(event))
            for decision, count in plan.counts.items():
                metrics.DECISIONS.labels(decision).inc(count)
            log.info("routing", task_id=req.task_id, app_id=req.app_id,
                     **{str(d): n for d, n in plan.counts.items()})
        await self._store.deliver_to_nodes(node_entries)
        await asyncio.gather(*pending)
        if requests:
            log.info("handed off", task_ids=[req.task_id for req in requests])

    async def _to_vendor(self, req: PushRequest, msg_id: str, vendor: str,
                         targets: list) -> list[asyncio.Future[object]]:
        expires = now_ms() + req.lifetime_s * 1000 if req.lifetime_s else 0
        size = self.settings.vendor_batch
        futures = []
        for start in range(0, len(targets), size):
            job = VendorJob(app_id=req.app_id, task_id=req.task_id, msg_id=msg_id,
                            message=req.message, targets=targets[start:start + size],
                            expires_at_ms=expires)
            futures.append(await self._bus.publish(topics.vendor_topic(vendor),
                                                   encode_internal(job),
                                                   key=req.task_id.encode()))
        return futures

    async def _reject(self, record: Record, reason: str) -> list[asyncio.Future[object]]:
        metrics.RECORDS.labels("dead_letter").inc()
        found = _TASK_ID.search(record.value)
        task_id = found.group(1).decode() if found else ""
        log.warning("push request rejected", task_id=task_id, reason=reason,
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
