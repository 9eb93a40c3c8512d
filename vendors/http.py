"""HTTP plumbing every vendor client shares: one call that turns transport failures, 429 and
5xx into ``VendorError``s, so vendor modules only read the answers that mean something. The
status rule (``check_status``) is shared with the HTTP/2 client of ``vendors.h2``."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from vendors.errors import RateLimitedError, TransientError


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date), if present;
    ``headers`` has lower-case names (or looks them up case-insensitively, as httpx does)."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None

    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


#: Requests in flight to one vendor host per client; every one may keep its connection, since
#: httpx's default of 20 kept connections made a 64-wide sender reconnect constantly.
POOL_SIZE = 100


def new_client(*, timeout_s: float, verify: ssl.SSLContext | bool = True,
               http2: bool = False) -> httpx.AsyncClient:
    """The HTTP client a vendor module uses: pooled for the sender's concurrency."""
    return httpx.AsyncClient(timeout=timeout_s, verify=verify, http2=http2,
                             limits=httpx.Limits(max_connections=POOL_SIZE,
                                                 max_keepalive_connections=POOL_SIZE))


async def call(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Send a request; raise ``TransientError`` or ``RateLimitedError`` where that is the answer.

    Any other response (2xx, and 4xx other than 429) is returned for the vendor module to read.
    """
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        raise TransientError(f"{type(exc).__name__}: {exc}") from None
    check_status(response.status_code, response.headers, url)
    return response


def check_status(status: int, headers: Mapping[str, str], url: str) -> None:
    """Raise ``RateLimitedError`` for 429 and ``TransientError`` for 5xx (with Retry-After);
    any other status is the vendor module's to read."""
    if status == 429:
        raise RateLimitedError(f"HTTP 429 from {url}", retry_after_s=retry_after_s(headers))
    if status >= 500:
        raise TransientError(f"HTTP {status} from {url}", retry_after_s=retry_after_s(headers))
