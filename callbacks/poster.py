"""One callback post: the signed request, and what its answer means. No retries here.

A post is delivered on a 2xx answer. Everything else is a failure the caller may retry: no
answer within the timeout, no connection, any other status (redirects are not followed: the
app registered this URL, not the one it points to), or anything the client raised. The
signature is made again on every attempt, over a fresh timestamp, so that a receiver can
refuse posts older than a few minutes without refusing a retry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import httpx

from proto.callbacks import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature

#: Connections kept open at once across every receiver: posts of one batch run concurrently.
POOL_SIZE = 256
#: Bytes of an answer read at most: a receiver's body means nothing, but reading a short one
#: lets the connection be reused; a longer one is cut off with its connection.
MAX_ANSWER_BYTES = 64 * 1024


class Failure(StrEnum):
    """Why an attempt failed."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    STATUS = "status"
    #: The client raised something else (a URL it cannot use, say).
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Post:
    """One post to an app: the encoded ``CallbackBatch`` and where its events came from."""

    app_id: str
    url: str
    secret: str
    body: bytes
    events: int
    #: Where its events were consumed (``topic/partition/first-last``, comma separated).
    source: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one attempt: delivered when ``failure`` is None."""

    failure: Failure | None = None
    detail: str = ""

    @property
    def delivered(self) -> bool:
        """Whether the receiver took the post."""
        return self.failure is None


def new_client(timeout_s: float) -> httpx.AsyncClient:
    """The HTTP/1.1 client every post shares."""
    return httpx.AsyncClient(timeout=timeout_s, follow_redirects=False,
                             limits=httpx.Limits(max_connections=POOL_SIZE,
                                                 max_keepalive_connections=POOL_SIZE),
                             headers={"user-agent": "herald-callbacks"})


def signed_headers(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers of a post of ``body`` made at ``timestamp`` (Unix seconds)."""
    return {"content-type": "application/json", TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(secret, timestamp, body)}


async def attempt(client: httpx.AsyncClient, post: Post, timeout_s: float,
                  clock: Callable[[], float] = time.time) -> Outcome:
    """Post once; the outcome, never an exception (but cancellation)."""
    headers = signed_headers(post.secret, post.body, int(clock()))
    try:
        # httpx's timeout bounds each read; this bounds the whole exchange, so that a
        # receiver trickling bytes cannot hold a post longer than ``timeout_s`` either.
        async with asyncio.timeout(timeout_s):
            async with client.stream("POST", post.url, content=post.body,
                                     headers=headers) as response:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read > MAX_ANSWER_BYTES:
                        break
    except (TimeoutError, httpx.TimeoutException):
        return Outcome(Failure.TIMEOUT, f"no answer within {timeout_s} s")
    except httpx.TransportError as exc:
        return Outcome(Failure.CONNECTION, f"{type(exc).__name__}: {exc}"[:300])
    except Exception as exc:
        # A post that cannot be made must be parked in the end, not stall the partition.
        return Outcome(Failure.ERROR, f"{type(exc).__name__}: {exc}"[:300])
    if 200 <= response.status_code < 300:
        return Outcome()
    return Outcome(Failure.STATUS, f"HTTP {response.status_code}")
