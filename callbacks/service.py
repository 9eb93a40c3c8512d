"""The callback sender: ``push.events`` in the group ``herald-callbacks``, posted to apps.

Delivery to devices is untouched by design: this is a process of its own, in consumer groups
of its own, reading events the other roles have already published. A receiver that is slow or
down delays callbacks and nothing else; no push waits for it.

Two loops run side by side. The main loop, per batch of ``push.events``:

1. decode the events; an undecodable one is skipped and counted (``herald stats`` parks it in
   ``push.deadletter``: one dead letter per record is enough);
2. keep those whose app has a callback config (``ConfigCache``) that asks for their stage;
3. cut them per app into posts (``callbacks.batches``);
4. post every post once, concurrently, within ``first_timeout_s``; a post that fails
   (``callbacks.poster``) is handed to ``push.callbacks.retry`` (``callbacks.retries``: its
   body, due again after a jittered backoff), or parked on ``push.callbacks.parked`` if that
   was its last attempt;
5. commit, once every post is delivered or its hand-off is acknowledged.

The retry loop, in the group ``herald-callbacks-retry`` on ``push.callbacks.retry``, per batch:
every retry waits for its not-before time (at most ``backoff_max_s``), is signed afresh with
the app's current config and posted within ``request_timeout_s``, concurrently; one that fails
again goes back to the retry topic due for its next attempt, and after ``max_attempts`` in all
is parked: its body, with the reason, the app and the records it came from. The batch is
committed once every retry is delivered, scheduled again or parked.

A process that dies leaves its batches to be read again: posts are at least once, and
receivers dedupe by (task, device, stage, channel) as every consumer of events does.

Isolation: a batch of the main loop takes at most ``first_timeout_s`` (and a publish), so a
receiver that hangs or fails holds back other apps' callbacks that long at most, and its own
retries wait in the retry loop, which holds back only other retries. Posts of one app run
concurrently, so they may arrive in any order; every event carries its ``ts_ms``.

Filling posts: a fetch waits up to ``flush_ms`` for the first event; after a batch that was not
full the next fetch starts ``flush_ms`` after this one, so that a trickle of events goes out in
posts of many events rather than one post per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import httpx
import structlog
from prometheus_client import Counter

from callbacks import metrics, poster, retries
from callbacks.batches import Wanted, plan
from callbacks.configs import ConfigCache
from callbacks.poster import Outcome, Post
from callbacks.retries import Retry
from herald.backoff import Backoff
from herald.bus import Bus, Record, Subscription
from herald.runtime import dead_letter
from herald.settings import CallbacksSettings
from herald.store import Store
from proto import topics
from proto.errors import DecodeError
from proto.events import decode_event

log = structlog.get_logger()


class Stopped(Exception):
    """Stop was asked while posts were in flight: their batch is left uncommitted."""


class Callbacks:
    """Posts the events apps asked for, as a member of both callbacks consumer groups."""

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
        """Run the main loop and the retry loop until ``stop`` is set."""
        # Together: joining a group may wait for a dead member's session to time out.
        events, due = await asyncio.gather(
            self._bus.subscribe([topics.EVENTS], topics.CALLBACKS_GROUP),
            self._bus.subscribe([topics.CALLBACKS_RETRY], topics.CALLBACKS_RETRY_GROUP))
        async with asyncio.TaskGroup() as group:
            group.create_task(self._loop(stop, events, "main", self.settings.batch_records,
                                         self.handle, metrics.FAILURES, fill=True))
            group.create_task(self._loop(stop, due, "retry", self.settings.retry_batch_records,
                                         self.handle_retries, metrics.RETRY_FAILURES,
                                         fill=False))

    async def _loop(self, stop: asyncio.Event, sub: Subscription, name: str, max_records: int,
                    handle: Callable[[list[Record]], Awaitable[None]], failures: Counter, *,
                    fill: bool) -> None:
        """``handle`` batches until ``stop`` is set; a failed batch is read again after a
        backoff. ``fill``: pace fetches after a batch that was not full (see above)."""
        loop = asyncio.get_running_loop()
        flush_s = self.settings.flush_ms / 1000
        failed = 0
        while not stop.is_set():
            fetched_at, count = 0.0, 0
            try:
                async with sub.batch(timeout_ms=self.settings.flush_ms,
                                     max_records=max_records) as records:
                    fetched_at, count = loop.time(), len(records)
                    if records:
                        await _unless_stopped(stop, handle(records))
                failed = 0
            except Stopped:
                log.info("stopping with posts in flight; their batch will be read again",
                         loop=name)
                break
            except Exception:
                failed += 1
                failures.inc()
                log.exception("batch failed; it will be read again", loop=name, attempt=failed)
                await _pause(stop, self._batch_backoff.delay(failed))
                continue
            if fill and 0 < count < max_records:
                await _pause(stop, fetched_at + flush_s - loop.time())
        await sub.close()

    async def handle(self, records: list[Record]) -> None:
        """Post one batch's wanted events once; returns once every post is delivered, handed
        to the retry topic or parked."""
        events = _decode(records)
        configs = await self._configs.get_many(e.app_id for e, _ in events if e.app_id)
        wanted: list[Wanted] = [(e, r) for e, r in events
                                if e.app_id in configs and e.stage in configs[e.app_id].stages]
        metrics.EVENTS.labels("not_wanted").inc(len(events) - len(wanted))
        # A task group, not gather: if one post fails (its hand-off refused), the others stop
        # too instead of posting on behind a batch that will be read again.
        async with asyncio.TaskGroup() as group:
            for post in plan(wanted, configs):
                group.create_task(self._try(post, 1, self.settings.first_timeout_s, "first"))

    async def handle_retries(self, records: list[Record]) -> None:
        """Try every retry of a batch once, when due; returns once each is delivered,
        scheduled again or parked."""
        due: list[Retry] = []
        for record in records:
            try:
                due.append(retries.decode(record))
            except retries.InvalidRetry as err:
                log.warning("invalid retry record dead-lettered", reason=str(err),
                            source=f"{record.topic}/{record.partition}/{record.offset}")
                await (await dead_letter(self._bus, record, str(err)))
        configs = await self._configs.get_many(r.app_id for r in due)
        async with asyncio.TaskGroup() as group:
            for retry in due:
                if (config := configs.get(retry.app_id)) is None:
                    metrics.EVENTS.labels("not_wanted").inc(retry.events)
                    log.info("retry dropped: the app has no callback config any more",
                             app_id=retry.app_id, attempt=retry.attempt, source=retry.source)
                    continue
                group.create_task(self._retry(retry, retry.post(config)))

    async def _retry(self, retry: Retry, post: Post) -> None:
        """Wait until ``retry`` is due, then try it."""
        now = time.time()
        wait = retries.wait_s(retry.not_before_ms, now, self.settings.backoff_max_s)
        metrics.RETRY_LATENESS.observe(max(0.0, now - retry.not_before_ms / 1000))
        if wait > 0:
            metrics.RETRIES_EARLY.inc()
            await asyncio.sleep(wait)
        await self._try(post, retry.attempt, self.settings.request_timeout_s, "retry")

    async def _try(self, post: Post, attempt: int, timeout_s: float, loop: str) -> None:
        """Make attempt ``attempt`` of ``post``; if it fails, schedule the next one on the
        retry topic, or park the post after its last, and wait for the bus to store that."""
        started = time.perf_counter()
        outcome = await poster.attempt(self._client, post, timeout_s)
        metrics.POST_SECONDS.observe(time.perf_counter() - started)
        if outcome.delivered:
            metrics.POSTS.labels("delivered").inc()
            metrics.EVENTS.labels("posted").inc(post.events)
            log.debug("posted", app_id=post.app_id, events=post.events, attempt=attempt)
            return
        if attempt >= self._attempts:
            await self._park(post, outcome, attempt)
            return
        metrics.POSTS.labels("retried").inc()
        metrics.RETRIES.labels(loop).inc()
        delay = self._backoff.delay(attempt)
        log.warning("callback post failed; retrying", app_id=post.app_id,
                    failure=outcome.failure, detail=outcome.detail, attempt=attempt,
                    delay_s=round(delay, 3))
        scheduled = await self._bus.publish(
            topics.CALLBACKS_RETRY, post.body, key=post.app_id.encode(),
            headers=retries.headers(post, attempt + 1, int((time.time() + delay) * 1000)))
        await scheduled

    async def _park(self, post: Post, outcome: Outcome, attempts: int) -> None:
        failure = outcome.failure or poster.Failure.ERROR
        metrics.POSTS.labels("parked").inc()
        metrics.EVENTS.labels("parked").inc(post.events)
        metrics.PARKED.labels(post.app_id, failure).inc()
        reason = f"{failure}: {outcome.detail} ({attempts} attempts)"
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
