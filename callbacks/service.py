"""The callback sender: ``push.events`` in the group ``herald-callbacks``, posted to apps.

Delivery to devices is untouched by design: this is a process of its own, in a consumer group
of its own, reading events the other roles have already published. A receiver that is slow or
down delays this group's reading of ``push.events`` and nothing else; no push waits for it.

Per batch of records:

1. decode the events; an undecodable one is skipped and counted (``herald stats`` parks it in
   ``push.deadletter``: one dead letter per record is enough);
2. keep those whose app has a callback config (``ConfigCache``) that asks for their stage;
3. cut them per app into posts (``callbacks.batches``);
4. post every post concurrently; a failed attempt (``callbacks.poster``) is tried again after
   a jittered backoff, up to ``max_attempts``, then the post is parked on
   ``push.callbacks.parked``: its body, with the reason, the app and the records it came from;
5. commit, once every post is delivered or its parking is acknowledged. A process that dies
   leaves its batch to be read again: posts are at least once, and receivers dedupe by
   (task, device, stage, channel) as every consumer of events does.

Isolation: posts of different apps run concurrently, and one post takes at most
``max_attempts * request_timeout_s + (max_attempts - 1) * backoff_max_s``. A receiver that
hangs does not hold back another app's post of the same batch; the next batch waits for it at
most that long. Posts of one app run concurrently too, so they may arrive in any order; every
event carries its ``ts_ms``.

Filling posts: a fetch waits up to ``flush_ms`` for the first event; after a batch that was not
full the next fetch starts ``flush_ms`` after this one, so that a trickle of events goes out in
posts of many events rather than one post per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any

import httpx
import structlog

from callbacks import metrics, poster
from callbacks.batches import Wanted, plan
from callbacks.configs import ConfigCache
from callbacks.poster import Outcome, Post
from herald.backoff import Backoff
from herald.bus import Bus, Record
from herald.settings import CallbacksSettings
from herald.store import Store
from proto import topics
from proto.errors import DecodeError
from proto.events import decode_event

log = structlog.get_logger()


class Stopped(Exception):
    """Stop was asked while posts were in flight: their batch is left uncommitted."""


class Callbacks:
    """Posts the events apps asked for, as a member of the callbacks consumer group."""

    def __init__(self, settings: CallbacksSettings, store: Store, bus: Bus,
                 client: httpx.AsyncClient) -> None:
        self.settings = settings
        self._bus = bus
        self._client = client
        self._configs = ConfigCache(store, settings.config_ttl_s)
        self._backoff = Backoff(settings.backoff_base_s, settings.backoff_max_s)
        self._attempts = max(1, settings.max_attempts)
        self._batch_backoff = Backoff(base_s=0.1, cap_s=5.0)

    async def run(self, stop: asyncio.Event) -> None:
        """Post batches until ``stop`` is set; a failed batch is read again after a backoff."""
        sub = await self._bus.subscribe([topics.EVENTS], topics.CALLBACKS_GROUP)
        loop = asyncio.get_running_loop()
        flush_s = self.settings.flush_ms / 1000
        failures = 0
        while not stop.is_set():
            fetched_at, count = 0.0, 0
            try:
                async with sub.batch(timeout_ms=self.settings.flush_ms,
                                     max_records=self.settings.batch_records) as records:
                    fetched_at, count = loop.time(), len(records)
                    if records:
                        await _unless_stopped(stop, self.handle(records))
                failures = 0
            except Stopped:
                log.info("stopping with posts in flight; their batch will be read again")
                break
            except Exception:
                failures += 1
                metrics.FAILURES.inc()
                log.exception("batch failed; it will be read again", attempt=failures)
                await _pause(stop, self._batch_backoff.delay(failures))
                continue
            if 0 < count < self.settings.batch_records:
                await _pause(stop, fetched_at + flush_s - loop.time())
        await sub.close()

    async def handle(self, records: list[Record]) -> None:
        """Post one batch's wanted events; returns once every post is delivered or parked."""
        events = _decode(records)
        configs = await self._configs.get_many(e.app_id for e, _ in events if e.app_id)
        wanted: list[Wanted] = [(e, r) for e, r in events
                                if e.app_id in configs and e.stage in configs[e.app_id].stages]
        metrics.EVENTS.labels("not_wanted").inc(len(events) - len(wanted))
        # A task group, not gather: if one post fails (parking refused), the others stop too
        # instead of posting on behind a batch that will be read again.
        async with asyncio.TaskGroup() as group:
            for post in plan(wanted, configs):
                group.create_task(self._deliver(post))

    async def _deliver(self, post: Post) -> None:
        """Post until delivered or out of attempts, then park."""
        outcome = Outcome()
        for attempt in range(1, self._attempts + 1):
            started = time.perf_counter()
            outcome = await poster.attempt(self._client, post, self.settings.request_timeout_s)
            metrics.POST_SECONDS.observe(time.perf_counter() - started)
            if outcome.delivered:
                metrics.POSTS.labels("delivered").inc()
                metrics.EVENTS.labels("posted").inc(post.events)
                log.debug("posted", app_id=post.app_id, events=post.events, attempt=attempt)
                return
            if attempt < self._attempts:
                metrics.POSTS.labels("retried").inc()
                delay = self._backoff.delay(attempt)
                log.warning("callback post failed; retrying", app_id=post.app_id,
                            failure=outcome.failure, detail=outcome.detail, attempt=attempt,
                            delay_s=round(delay, 3))
                await asyncio.sleep(delay)
        await self._park(post, outcome)

    async def _park(self, post: Post, outcome: Outcome) -> None:
        failure = outcome.failure or poster.Failure.ERROR
        metrics.POSTS.labels("parked").inc()
        metrics.EVENTS.labels("parked").inc(post.events)
        metrics.PARKED.labels(post.app_id, failure).inc()
        reason = f"{failure}: {outcome.detail} ({self._attempts} attempts)"
        log.warning("callback post parked", app_id=post.app_id, events=post.events,
                    reason=reason, source=post.source)
        parked = await self._bus.publish(
            topics.CALLBACKS_PARKED, post.body, key=post.app_id.encode(),
            headers=[(topics.DL_REASON, reason.encode()[:1000]),
                     (topics.CB_APP, post.app_id.encode()),
                     (topics.DL_SOURCE, post.source.encode()[:1000])])
        await parked


def _decode(records: list[Record]) -> list[Wanted]:
    events: list[Wanted] = []
    for record in records:
        try:
            events.append((decode_event(record.value), record))
        except DecodeError as err:
            metrics.EVENTS.labels("undecodable").inc()
            log.warning("undecodable event skipped", reason=err.reason,
                        source=f"{record.topic}/{record.partition}/{record.offset}")
    return events


async def _unless_stopped(stop: asyncio.Event, work: Coroutine[Any, Any, None]) -> None:
    """Run ``work``; if ``stop`` is set first, cancel it and raise ``Stopped``."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not task.done():
            task.cancel()
    if task.cancelled() or not task.done():
        await asyncio.gather(task, return_exceptions=True)
        raise Stopped
    task.result()


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stop`` is set meanwhile."""
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
