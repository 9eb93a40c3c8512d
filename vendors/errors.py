"""Errors of vendor clients. Senders act on attributes, never on the concrete type.

VendorError                 the request failed as a whole; ``retriable`` says whether to retry
├── TransientError          5xx, timeouts, resets: retry with backoff
├── RateLimitedError        quota or rate limit: retry after ``retry_after_s`` if given
├── AuthError               credentials refused even after one refresh: alert, do not retry
└── RejectedError           the vendor refused the request itself: do not retry
    └── PayloadTooLargeError  the mapped payload exceeds the vendor's limit
"""

from __future__ import annotations


class VendorError(Exception):
    """A vendor request failed as a whole."""

    retriable = False

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


class AuthError(VendorError):
    """The vendor refused our credentials after the client refreshed them once."""


class RejectedError(VendorError):
    """The vendor refused the request (bad payload, unknown app)."""


class PayloadTooLargeError(RejectedError):
    """The payload built for the vendor is larger than the vendor accepts."""
