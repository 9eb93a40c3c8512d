"""What a sender does after a failed vendor request: retry after a delay, or give up. No I/O.

The decision hangs on the error's attributes (``vendors.errors``):

- not ``retriable`` (auth, rejected, payload too large): give up at once with the error's
  ``outcome`` as the devices' reason; nothing is parked, sending it again would fail the same.
- ``retriable`` (transient, rate limited): wait the vendor's Retry-After if it gave one, else
  the capped, jittered exponential backoff, and retry; give up and park the job in the
  dead-letter topic (it may go through when replayed) once ``max_attempts`` requests failed,
  or when the wait would be longer than ``max_wait_s`` (a daily quota resetting at midnight)
  or would end after the push expires.
"""

from __future__ import annotations

from dataclasses import dataclass

from herald.backoff import Backoff
from proto.events import Reason
from vendors.errors import VendorError

#: The devices' reason when the app has no credentials for the vendor.
NO_CREDENTIALS = Reason.NO_CREDENTIALS


@dataclass(frozen=True, slots=True)
class Retry:
    """Send again after ``delay_s``; ``throttled`` when the wait is a rate limit's."""

    delay_s: float
    throttled: bool = False


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Fail the devices with ``reason``; ``detail`` says why; ``park`` dead-letters the job."""

    reason: str
    detail: str
    park: bool


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds of the retries of one job."""

    max_attempts: int
    backoff: Backoff
    max_wait_s: float

    def after(self, error: VendorError, attempt: int, now_ms: int,
              expires_at_ms: int) -> Retry | GiveUp:
        """The decision after request ``attempt`` (1-based) of a job failed with ``error``."""
        if not error.retriable:
            return GiveUp(error.outcome, error.reason, park=False)
        if attempt >= self.max_attempts:
            return GiveUp(error.outcome, f"{error.reason} (after {attempt} attempts)", park=True)
        delay = self.delay(error.retry_after_s, attempt)
        if delay > self.max_wait_s:
            return GiveUp(error.outcome, f"{error.reason} (retry after {delay:.0f} s is over "
                                         f"the {self.max_wait_s:.0f} s cap)", park=True)
        if expires_at_ms and now_ms + delay * 1000 >= expires_at_ms:
            return GiveUp(error.outcome, f"{error.reason} (the push expires before a retry)",
                          park=True)
        return Retry(delay, throttled=error.throttled)

    def delay(self, retry_after_s: float | None, attempt: int) -> float:
        """The vendor's Retry-After when it gave one, else the backoff of ``attempt``."""
        return retry_after_s if retry_after_s is not None else self.backoff.delay(attempt)
