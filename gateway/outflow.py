"""What leaves a gateway node for Kafka: events, and pushes sent back to the router's offline
path. Both are buffered and published by one background loop, so the per-frame paths (ACK,
timeouts, closes) never wait on Kafka."""

from __future__ import annotations

import asyncio

import msgspec
import structlog

from gateway import metrics
from gateway.session import Pending
from herald.bus import Bus
from herald.store import Held
from proto import topics
from proto.envelopes import Fallback, encode_internal
from proto.events import Event, Stage, encode_event

log = structlog.get_logger()

#: How often buffered records are published: the added latency of events and fallbacks.
FLUSH_INTERVAL_S = 0.01


class Outflow:
    """Buffers events and fallbacks; ``run`` publishes them until cancelled, then once more."""

    def __init__(self, bus: Bus, node: str) -> None:
        self._bus = bus
        self._node = node
        self._events: list[Event] = []
        # (app, task, msg, reason) -> the pending push (its frame and policy) and its devices
        self._fallbacks: dict[tuple[str, str, str, str], tuple[Pending, list[str]]] = {}
        self._wake = asyncio.Event()

    def emit(self, event: Event) -> None:
        """Queue an event."""
        self._events.append(event)
        self._wake.set()

    def fall_back(self, held: Held, pending: Pending, reason: str) -> None:
        """Queue a push the device did not get online, for the router's offline path."""
        key = (held.app_id, pending.task_id, pending.msg_id, reason)
        entry = self._fallbacks.get(key)
        if entry is None:
            self._fallbacks[key] = (pending, [held.registration_id])
        else:
            entry[1].append(held.registration_id)
        metrics.FALLBACKS.labels(reason).inc()
        log.debug("fallback", app_id=held.app_id, task_id=pending.task_id,
                 msg_id=pending.msg_id, registration_id=held.registration_id, reason=reason)
        self._wake.set()

    async def run(self) -> None:
        """Publish what is buffered, every ``FLUSH_INTERVAL_S`` at most, until cancelled."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                await self.flush()
                await asyncio.sleep(FLUSH_INTERVAL_S)  # batch what arrives meanwhile
        finally:
            await self.flush()

    async def flush(self) -> None:
        """Publish everything buffered now and wait until Kafka has it; what Kafka refuses is
        counted and logged (the node keeps serving)."""
        events, self._events = _grouped(self._events), []
        fallbacks, self._fallbacks = self._fallbacks, {}
        records = [(topics.EVENTS, encode_event(e), e.task_id) for e in events]
        for (app_id, task_id, msg_id, reason), (pending, rids) in fallbacks.items():
            record = Fallback(app_id=app_id, task_id=task_id, msg_id=msg_id,
                              frame=pending.frame, registration_ids=rids,
                              push_flag=pending.push_flag, expires_at_ms=pending.expires_at_ms,
                              reason=reason, node=self._node)
            records.append((topics.FALLBACK, encode_internal(record), task_id))
        sent: list[tuple[str, str, asyncio.Future[object]]] = []
        for topic, value, task_id in records:
            try:
                sent.append((topic, task_id,
                             await self._bus.publish(topic, value, key=task_id.encode())))
            except Exception as exc:
                self._lost(topic, task_id, exc)
        outcomes = await asyncio.gather(*(f for _, _, f in sent), return_exceptions=True)
        for (topic, task_id, _), outcome in zip(sent, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                self._lost(topic, task_id, outcome)

    def _lost(self, topic: str, task_id: str, exc: BaseException) -> None:
        metrics.OUTFLOW_ERRORS.inc()
        log.error("kafka refused a record; it is lost", topic=topic, task_id=task_id,
                  error=repr(exc))


def _grouped(events: list[Event]) -> list[Event]:
    """``events`` in order, but the one-device ``delivered`` events of one push stamped with
    the same millisecond as one event naming all their devices: in a broadcast nearly every
    frame a node reads is an ACK, and a Kafka record for each was a fifth of its CPU. Every
    device keeps its exact time."""
    groups: dict[tuple[str, str, str, int], list[Event]] = {}
    order: list[Event | list[Event]] = []
    for event in events:
        if event.stage is not Stage.DELIVERED or event.registration_ids:
            order.append(event)
            continue
        key = (event.app_id, event.task_id, event.msg_id, event.ts_ms)
        group = groups.get(key)
        if group is None:
            group = groups[key] = []
            order.append(group)
        group.append(event)
    return [item if isinstance(item, Event)
            else item[0] if len(item) == 1
            else msgspec.structs.replace(item[0], registration_id="",
                                         registration_ids=[e.registration_id for e in item])
            for item in order]
