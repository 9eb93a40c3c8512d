"""The sender loop every vendor shares: consume, send, retry, emit events, then commit."""

from __future__ import annotations

import asyncio
import time

import structlog

from herald.backoff import Backoff
from herald.bus import Bus, Record
from herald.runtime import dead_letter
from herald.settings import VendorSettings
from proto import topics
from proto.envelopes import VendorJob, decode_vendor_job
from proto.errors import DecodeError
from proto.events import Event, Reason, Stage, encode_event, now_ms
from vendors import metrics
from vendors.client import TargetResult, VendorClient
from vendors.errors import VendorError

log = structlog.get_logger()


class Sender:
    """Consumes one vendor's topic as a member of that vendor's consumer group."""

    def __init__(self, settings: VendorSettings, client: VendorClient, bus: Bus) -> None:
        self.settings = settings
        self._client = client
        self._bus = bus
        self._vendor = client.name
        self._backoff = Backoff(settings.backoff_base_s, settings.backoff_max_s)
        self._slots = asyncio.Semaphore(settings.concurrency)

    async def run(self, stop: asyncio.Event) -> None:
        """Send batches until ``stop`` is set; a batch is committed once every job is final."""
        sub = await self._bus.subscribe([topics.vendor_topic(self._vendor)],
                                        topics.vendor_group(self._vendor))
        failures = 0
        while not stop.is_set():
            try:
                async with sub.batch(timeout_ms=200, max_records=256) as records:
                    await asyncio.gather(*(self._process(r) for r in records))
                failures = 0
            except Exception:
                failures += 1
                log.exception("batch failed; it will be retried", vendor=self._vendor)
                await asyncio.sleep(self._backoff.delay(failures))
        await sub.close()

    async def _process(self, record: Record) -> None:
        try:
            job = decode_vendor_job(record.value)
        except DecodeError as err:
            metrics.DEAD_LETTERS.labels(self._vendor).inc()
            log.error("undecodable vendor job", vendor=self._vendor, reason=err.reason)
            await (await dead_letter(self._bus, record, err.reason))
            return
        async with self._slots:
            results = await self._send_with_retries(job)
        if results is None:
            metrics.DEAD_LETTERS.labels(self._vendor).inc()
            await (await dead_letter(self._bus, record, "vendor kept failing"))
            results = [TargetResult(t.registration_id, error="vendor_error")
                       for t in job.targets]
        await asyncio.gather(*[await self._emit(job, result) for result in results])

    async def _send_with_retries(self, job: VendorJob) -> list[TargetResult] | None:
        """The per-device results, or None when every attempt failed."""
        for attempt in range(1, self.settings.max_attempts + 1):
            started = time.perf_counter()
            try:
                results = await self._client.send(job, {})
            except VendorError as err:
                metrics.REQUESTS.labels(self._vendor, type(err).__name__).inc()
                log.warning("vendor request failed", vendor=self._vendor, task_id=job.task_id,
                            app_id=job.app_id, reason=err.reason, attempt=attempt,
                            retriable=err.retriable)
                if not err.retriable or attempt == self.settings.max_attempts:
                    return None
                metrics.RETRIES.labels(self._vendor).inc()
                delay = err.retry_after_s
                await asyncio.sleep(delay if delay is not None else self._backoff.delay(attempt))
                continue
            metrics.LATENCY.labels(self._vendor).observe(time.perf_counter() - started)
            metrics.REQUESTS.labels(self._vendor, "ok").inc()
            return results
        return None

    async def _emit(self, job: VendorJob, result: TargetResult) -> asyncio.Future[object]:
        if not result.error:
            stage, reason = Stage.SENT, ""
        else:
            stage = Stage.FAILED
            reason = Reason.TOKEN_INVALID if result.token_invalid else Reason.VENDOR_ERROR
        metrics.SENDS.labels(self._vendor, reason or "sent").inc()
        log.info("vendor outcome", vendor=self._vendor, task_id=job.task_id, app_id=job.app_id,
                 registration_id=result.registration_id, stage=stage, reason=reason)
        event = Event(stage=stage, task_id=job.task_id, app_id=job.app_id, msg_id=job.msg_id,
                      registration_id=result.registration_id, channel=self._vendor,
                      reason=reason, detail=result.error, ts_ms=now_ms())
        return await self._bus.publish(topics.EVENTS, encode_event(event),
                                       key=job.task_id.encode())
