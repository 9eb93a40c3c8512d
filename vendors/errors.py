"""Errors of vendor clients. Senders act on attributes, never on the concrete type:
``retriable`` (send again later), ``throttled`` (the wait is a rate limit's), ``outcome`` (the
``failed`` event's reason when the sender gives up) and ``alert`` (an operator must act: a
metric and an error log line).

VendorError                 the request failed as a whole; ``retriable`` says whether to retry
├── TransientError          5xx, timeouts, resets: retry with backoff
├── RateLimitedError        quota or rate limit: retry after ``retry_after_s`` if given
│   └── QuotaExceededError  Herald's own daily quota of the app is used up (until the day ends)
├── AuthError               credentials refused even after one refresh: alert, do not retry
└── RejectedError           the vendor refused the request itself: do not retry
    ├── PayloadTooLargeError  the mapped payload exceeds the vendor's limit
    └── NotSupportedError     the vendor has no API for what was asked (revoke)
"""

from __future__ import annotations

from proto.events import Reason


class VendorError(Exception):
    """A vendor request failed as a whole."""

    retriable = False
    throttled = False
    outcome: str = Reason.VENDOR_ERROR
    alert = False

    def __init__(self, reason: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class TransientError(VendorError):
    """A failure that may pass: server errors, timeouts, connection resets."""

    retriable = True


class RateLimitedError(VendorError):
    """The vendor asked us to slow down (HTTP 429 or a vendor quota code)."""

    retriable = True
    throttled = True
    outcome: str = Reason.RATE_LIMITED


class QuotaExceededError(RateLimitedError):
    """The app's daily quota on this vendor is used up: Herald's limit, not the vendor's."""

    outcome: str = Reason.QUOTA_EXCEEDED


class AuthError(VendorError):
    """The vendor refused our credentials after the client refreshed them once."""

    outcome: str = Reason.AUTH
    alert = True


class RejectedError(VendorError):
    """The vendor refused the request (bad payload, unknown app)."""

    outcome: str = Reason.REJECTED


class PayloadTooLargeError(RejectedError):
    """The payload built for the vendor is larger than the vendor accepts."""

    outcome: str = Reason.PAYLOAD_TOO_LARGE


class NotSupportedError(RejectedError):
    """The vendor has no API for the operation (a revoke on a channel that cannot revoke)."""

    outcome: str = Reason.NOT_SUPPORTED
