"""Herald's own rate limits on a vendor channel, enforced by the sender before each request.

Two kinds, configured in ``VendorSettings`` (``vendor_rps``, ``app_rps``, ``app_daily_quota``,
with per-app overrides in ``app_limits``):

- Requests per second, per vendor and per app: a ``TokenBucket`` each, **in this process
  only**. Senders of a vendor scale as a consumer group, so N processes allow N times the rate:
  set the per-process rate to the vendor's limit divided by the number of senders. A request
  waits for its token (counted as a local rate-limit wait) rather than failing.
- A daily quota of devices per app and vendor, **shared by every sender** through the store
  (``Store.take_daily_quota``, a Redis counter per day). The day runs in the configured UTC
  offset (China time by default, where vendors reset theirs). A job that does not fit fails
  with ``QuotaExceededError``, whose wait until the day's end is longer than any sender waits:
  the job is parked in the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone

from herald.store import Store
from vendors import metrics
from vendors.common import until_midnight
from vendors.errors import QuotaExceededError


class TokenBucket:
    """``rate`` requests per second with bursts of up to one second's worth, for one process.

    ``reserve`` takes a token at once and says how long to wait for it: callers that reserve
    while the bucket is empty queue up behind each other, each told a later time, without a
    lock (asyncio runs one reservation at a time).
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._capacity = max(1.0, rate)
        self._tokens = self._capacity
        self._clock = clock
        self._last = clock()

    def reserve(self) -> float:
        """Take one token; the seconds to wait before using it (0 if it was there)."""
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
        self._last = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate


class Limiter:
    """The rate limits of one vendor channel, for every app a sender serves."""

    def __init__(self, store: Store, vendor: str, *, vendor_rps: float, app_rps: float,
                 app_daily_quota: int, app_limits: Mapping[str, Mapping[str, float]],
                 utc_offset_h: float, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._vendor = vendor
        self._vendor_bucket = TokenBucket(vendor_rps) if vendor_rps > 0 else None
        self._app_rps = app_rps
        self._app_quota = app_daily_quota
        self._app_limits = app_limits
        self._zone = timezone(timedelta(hours=utc_offset_h))
        self._clock = clock
        self._app_buckets: dict[str, TokenBucket | None] = {}

    async def wait_turn(self, app_id: str) -> None:
        """Wait until a request of ``app_id`` is within the per-second limits."""
        wait = 0.0
        if self._vendor_bucket is not None:
            wait = self._vendor_bucket.reserve()
        bucket = self._app_bucket(app_id)
        if bucket is not None:
            wait = max(wait, bucket.reserve())
        if wait > 0:
            metrics.RATE_LIMIT_WAITS.labels(self._vendor, "local").inc()
            metrics.RATE_LIMIT_WAIT_SECONDS.labels(self._vendor, "local").inc(wait)
            await asyncio.sleep(wait)

    async def take_quota(self, app_id: str, devices: int) -> None:
        """Count ``devices`` against the app's daily quota; ``QuotaExceededError`` if full."""
        quota = int(self._app_limits.get(app_id, {}).get("daily_quota", self._app_quota))
        if quota <= 0:
            return
        now = self._clock()
        day = datetime.fromtimestamp(now, self._zone).date().isoformat()
        if not await self._store.take_daily_quota(app_id, self._vendor, day, devices, quota):
            raise QuotaExceededError(
                f"daily quota of {quota} devices for {app_id} on {self._vendor} is used up "
                f"({devices} more asked on {day})",
                retry_after_s=until_midnight(now, self._zone))

    def _app_bucket(self, app_id: str) -> TokenBucket | None:
        if app_id not in self._app_buckets:
            rate = self._app_limits.get(app_id, {}).get("rps", self._app_rps)
            self._app_buckets[app_id] = TokenBucket(rate) if rate > 0 else None
        return self._app_buckets[app_id]
