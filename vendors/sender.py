"""The sender loop every vendor shares: consume, send, retry, emit events, then commit.

One sender process serves every app of its vendor: each job names its app, whose credentials
come from ``CredentialCache`` (the store, cached briefly). Per job:

1. an expired job fails with ``expired``; an app without credentials fails ``no_credentials``;
2. the app's daily quota is counted and the rate limits waited for (``vendors.limits``);
3. the client sends (jobs over the client's ``max_batch`` go as several requests); a failed
   request is retried or given up as ``vendors.policy`` decides from the error's attributes,
   devices the client marks ``retriable`` are sent again alone, and what is given up after
   retries is parked in the dead-letter topic (the job with just those devices);
4. tokens the vendor called invalid are removed from their device records, if still theirs;
5. one ``sent`` or ``failed`` event per device.

A recall job (``VendorJob.recall``) goes through the same steps as a revoke where the vendor
has one, else as its replacement content under the recalled notification's collapse id where
the vendor replaces by collapse id, else not at all (``not_supported``); a ``recalled`` event
per device it reached. A recall that fails is logged and counted, never a loss of the push.

A batch of records is committed only once every job in it has its final outcome: events
published and acknowledged, parked jobs acknowledged by the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass

import msgspec
import structlog

from herald.backoff import Backoff
from herald.bus import Bus, Record
from herald.runtime import dead_letter
from herald.settings import VendorSettings
from herald.store import Store
from proto import topics
from proto.envelopes import VendorJob, VendorTarget, decode_vendor_job, encode_internal
from proto.errors import DecodeError
from proto.events import Event, Reason, Stage, encode_event, now_ms
from vendors import metrics
from vendors.client import TargetResult, VendorClient
from vendors.credentials import CredentialCache
from vendors.errors import TransientError, VendorError
from vendors.limits import Limiter
from vendors.policy import NO_CREDENTIALS, GiveUp, Retry, RetryPolicy

log = structlog.get_logger()

Futures = list[asyncio.Future[object]]


@dataclass(frozen=True, slots=True)
class Final:
    """A device's final outcome: sent when ``reason`` is empty, else failed."""

    target: VendorTarget
    reason: str = ""
    detail: str = ""

    @classmethod
    def of(cls, target: VendorTarget, result: TargetResult) -> Final:
        """The outcome a client reported: sent, an invalid token, or the vendor's error."""
        if not result.error:
            return cls(target)
        reason = Reason.TOKEN_INVALID if result.token_invalid else Reason.VENDOR_ERROR
        return cls(target, reason, result.error)


class Sender:
    """Consumes one vendor's topic as a member of that vendor's consumer group."""

    def __init__(self, settings: VendorSettings, client: VendorClient, bus: Bus,
                 store: Store) -> None:
        self.settings = settings
        self._client = client
        self._bus = bus
        self._store = store
        self._vendor = client.name
        self._backoff = Backoff(settings.backoff_base_s, settings.backoff_max_s)
        self._policy = RetryPolicy(settings.max_attempts, self._backoff,
                                   settings.rate_limit_max_wait_s)
        self._credentials = CredentialCache(store, client.name, settings.credentials_ttl_s)
        self._limits = Limiter(store, client.name, vendor_rps=settings.vendor_rps,
                               app_rps=settings.app_rps, app_daily_quota=settings.app_daily_quota,
                               app_limits=settings.app_limits,
                               utc_offset_h=settings.quota_utc_offset_h)
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
        size = max(1, self._client.max_batch)
        parts = [msgspec.structs.replace(job, targets=job.targets[i:i + size])
                 for i in range(0, len(job.targets), size)]
        futures = await asyncio.gather(*(self._deliver(record, part) for part in parts))
        await asyncio.gather(*(f for part in futures for f in part))

    async def _deliver(self, record: Record, job: VendorJob) -> Futures:
        """Send ``job``; the futures of its events and dead letter, to await before commit."""
        futures: Futures = []
        finals = await self._outcomes(record, job, futures)
        if job.recall:
            for final in finals:
                metrics.RECALLS.labels(self._vendor, final.reason or "recalled").inc()
            failed = [f for f in finals if f.reason]
            if failed:
                log.warning("recall not done", vendor=self._vendor, app_id=job.app_id,
                            task_id=job.task_id, devices=len(failed), reason=failed[0].reason,
                            detail=failed[0].detail)
            finals = [f for f in finals if not f.reason]
        else:
            await self._forget_invalid_tokens(job, finals)
        futures += [await self._emit(job, final) for final in finals]
        return futures

    async def _outcomes(self, record: Record, job: VendorJob, futures: Futures) -> list[Final]:
        """Every device's final outcome, after retries; a parked job's future joins ``futures``."""
        if job.expires_at_ms and job.expires_at_ms <= now_ms():
            return [Final(t, Reason.EXPIRED, "expired before it was sent") for t in job.targets]
        if job.recall and not (self._client.can_revoke
                               or (job.replace and self._client.can_replace)):
            detail = f"{self._vendor} can neither revoke nor replace a notification"
            return [Final(t, Reason.NOT_SUPPORTED, detail) for t in job.targets]
        credentials, missing = await self._app_credentials(job)
        if credentials is None:
            return [Final(t, NO_CREDENTIALS, missing) for t in job.targets]
        finals: list[Final] = []
        pending, quota_taken, attempt = job, False, 0
        while True:
            attempt += 1
            try:
                if not quota_taken:
                    await self._limits.take_quota(job.app_id, len(pending.targets))
                    quota_taken = True
                results = await self._request(pending, credentials)
            except VendorError as err:
                decision = self._policy.after(err, attempt, now_ms(), job.expires_at_ms)
                if isinstance(decision, Retry):
                    await self._wait(pending, err.reason, decision, attempt)
                    continue
                return finals + await self._give_up(record, pending, decision, err, futures)
            again = [(t, r) for t, r in zip(pending.targets, results, strict=True)
                     if r.error and r.retriable]
            finals += [Final.of(t, r) for t, r in zip(pending.targets, results, strict=True)
                       if not (r.error and r.retriable)]
            if not again:
                return finals
            # Devices whose own request failed for a passing reason: those alone, again.
            pending = msgspec.structs.replace(pending, targets=[t for t, _ in again])
            error = TransientError("; ".join(sorted({r.error for _, r in again})))
            decision = self._policy.after(error, attempt, now_ms(), job.expires_at_ms)
            if isinstance(decision, GiveUp):
                return finals + await self._give_up(record, pending, decision, error, futures)
            await self._wait(pending, error.reason, decision, attempt)

    async def _app_credentials(self, job: VendorJob) -> tuple[Mapping[str, str] | None, str]:
        """The job's app's credentials, or None and why there are none usable."""
        if not self._client.needs_credentials:
            return {}, ""
        try:
            credentials = await self._credentials.get(job.app_id)
            detail = f"no {self._vendor} credentials stored for the app"
        except DecodeError as err:
            credentials, detail = None, err.reason
        if credentials is None:
            metrics.MISSING_CREDENTIALS.labels(self._vendor, job.app_id).inc()
            log.warning("app has no usable credentials", vendor=self._vendor,
                        app_id=job.app_id, task_id=job.task_id, detail=detail)
        return credentials, detail

    async def _request(self, job: VendorJob, credentials: Mapping[str, str]) -> list[TargetResult]:
        """One request of ``job`` within the rate limits and the concurrency bound."""
        await self._limits.wait_turn(job.app_id)
        async with self._slots:
            started = time.perf_counter()
            try:
                results = await self._call(job, credentials)
            except VendorError as err:
                metrics.REQUESTS.labels(self._vendor, job.app_id, type(err).__name__).inc()
                raise
            except Exception as exc:
                # A client bug must not stall the partition: retried, then parked. Only the
                # type and place are logged: an exception's message may quote credentials.
                frame = traceback.extract_tb(exc.__traceback__)[-1]
                log.error("vendor client raised", vendor=self._vendor, app_id=job.app_id,
                          task_id=job.task_id, error=type(exc).__name__,
                          at=f"{frame.filename}:{frame.lineno}")
                metrics.REQUESTS.labels(self._vendor, job.app_id, type(exc).__name__).inc()
                raise TransientError(f"client raised {type(exc).__name__}") from None
            finally:
                metrics.LATENCY.labels(self._vendor).observe(time.perf_counter() - started)
        if len(results) != len(job.targets):
            metrics.REQUESTS.labels(self._vendor, job.app_id, "BadResults").inc()
            raise TransientError(f"client reported {len(results)} results for "
                                 f"{len(job.targets)} devices")
        metrics.REQUESTS.labels(self._vendor, job.app_id, "ok").inc()
        return results

    async def _call(self, job: VendorJob, credentials: Mapping[str, str]) -> list[TargetResult]:
        """The client call ``job`` asks for: a send, a revoke, or a replacement sent under the
        recalled notification's collapse id (its msg_id unless the replacement names one)."""
        if not job.recall:
            return await self._client.send(job, credentials)
        if self._client.can_revoke:
            await self._client.revoke(job, credentials)
            return [TargetResult(t.registration_id) for t in job.targets]
        replacement = job.message if job.message.collapse_id else msgspec.structs.replace(
            job.message, collapse_id=job.msg_id)
        return await self._client.send(msgspec.structs.replace(job, message=replacement),
                                       credentials)

    async def _wait(self, job: VendorJob, reason: str, decision: Retry, attempt: int) -> None:
        metrics.RETRIES.labels(self._vendor).inc()
        if decision.throttled:
            metrics.RATE_LIMIT_WAITS.labels(self._vendor, "vendor").inc()
            metrics.RATE_LIMIT_WAIT_SECONDS.labels(self._vendor, "vendor").inc(decision.delay_s)
        log.warning("vendor request failed; retrying", vendor=self._vendor, app_id=job.app_id,
                    task_id=job.task_id, reason=reason, attempt=attempt,
                    devices=len(job.targets), delay_s=round(decision.delay_s, 3))
        await asyncio.sleep(decision.delay_s)

    async def _give_up(self, record: Record, job: VendorJob, decision: GiveUp,
                       error: VendorError, futures: Futures) -> list[Final]:
        fields = {"vendor": self._vendor, "app_id": job.app_id, "task_id": job.task_id,
                  "reason": decision.reason, "detail": decision.detail,
                  "devices": len(job.targets)}
        if error.alert:
            metrics.AUTH_FAILURES.labels(self._vendor, job.app_id).inc()
            log.error("ALERT: vendor refused the app's credentials", **fields)
        else:
            log.warning("vendor request failed; giving up", parked=decision.park, **fields)
        if decision.park:
            metrics.DEAD_LETTERS.labels(self._vendor).inc()
            # Only the devices given up on: replaying it must not reach the others again.
            parked = Record(record.topic, record.partition, record.offset, record.key,
                            encode_internal(job), record.headers)
            futures.append(await dead_letter(self._bus, parked,
                                             f"{decision.reason}: {decision.detail}"))
        return [Final(t, decision.reason, decision.detail) for t in job.targets]

    async def _forget_invalid_tokens(self, job: VendorJob, finals: list[Final]) -> None:
        """Remove the tokens the vendor called invalid from their device records."""
        invalid = [f.target for f in finals if f.reason == Reason.TOKEN_INVALID]
        if not invalid:
            return
        cleared = await asyncio.gather(
            *(self._store.forget_vendor_token(job.app_id, t.registration_id, t.token)
              for t in invalid), return_exceptions=True)
        for target, outcome in zip(invalid, cleared, strict=True):
            if isinstance(outcome, BaseException):
                # Best effort: the vendor reports the token again on the next push.
                log.warning("could not remove an invalid token", vendor=self._vendor,
                            app_id=job.app_id, registration_id=target.registration_id,
                            error=repr(outcome))
            elif outcome:
                metrics.TOKENS_INVALIDATED.labels(self._vendor).inc()

    async def _emit(self, job: VendorJob, final: Final) -> asyncio.Future[object]:
        stage = Stage.FAILED if final.reason else Stage.RECALLED if job.recall else Stage.SENT
        metrics.SENDS.labels(self._vendor, final.reason or "sent").inc()
        # Per device: a failure is worth a line at info, a success only when debugging.
        (log.info if final.reason else log.debug)(
            "vendor outcome", vendor=self._vendor, task_id=job.task_id, app_id=job.app_id,
            registration_id=final.target.registration_id, stage=stage, reason=final.reason)
        event = Event(stage=stage, task_id=job.task_id, app_id=job.app_id, msg_id=job.msg_id,
                      registration_id=final.target.registration_id, channel=self._vendor,
                      reason=final.reason, detail=final.detail[:500], ts_ms=now_ms())
        return await self._bus.publish(topics.EVENTS, encode_event(event),
                                       key=job.task_id.encode())
