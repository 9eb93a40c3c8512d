"""Retry records on ``push.callbacks.retry``: a failed post, due again at a not-before time. No I/O.

The value is the post's body as it was first cut (a ``CallbackBatch``, JSON), keyed by the app,
so that an app's retries share a partition. The headers say the rest:

- ``herald-app-id``: the app (``topics.CB_APP``);
- ``herald-attempt``: the number of the attempt this record is due for (2: the first retry);
- ``herald-not-before``: Unix time in ms before which it is not tried;
- ``herald-events``: the events it carries (for the metrics);
- ``herald-source``: where its events were consumed (``topics.DL_SOURCE``, as on a parked post).

The URL and the secret are not in the record: a retry is signed and sent with the app's config
of the time it is tried (a rotated secret, a new URL apply to it), and is dropped if the app has
no callback config any more.
"""

from __future__ import annotations

from dataclasses import dataclass

from callbacks.poster import Post
from herald.bus import Record
from proto import topics
from proto.callbacks import CallbackConfig

ATTEMPT = "herald-attempt"
NOT_BEFORE = "herald-not-before"
EVENTS = "herald-events"


class InvalidRetry(ValueError):
    """A record on the retry topic that is not a retry record (missing or bad headers)."""


@dataclass(frozen=True, slots=True)
class Retry:
    """One retry record, decoded."""

    app_id: str
    #: The attempt it is due for, 2 or more.
    attempt: int
    not_before_ms: int
    events: int
    source: str
    body: bytes

    def post(self, config: CallbackConfig) -> Post:
        """The post to make, to the app's current URL under its current secret."""
        return Post(self.app_id, config.url, config.secret, self.body, self.events, self.source)


def headers(post: Post, attempt: int, not_before_ms: int) -> list[tuple[str, bytes]]:
    """The headers of ``post``'s retry record, due for ``attempt`` at ``not_before_ms``."""
    return [(topics.CB_APP, post.app_id.encode()), (ATTEMPT, str(attempt).encode()),
            (NOT_BEFORE, str(not_before_ms).encode()), (EVENTS, str(post.events).encode()),
            (topics.DL_SOURCE, post.source.encode()[:1000])]


def decode(record: Record) -> Retry:
    """The retry ``record`` carries; raises ``InvalidRetry`` if it is not one."""
    fields = dict(record.headers)
    try:
        app_id = fields[topics.CB_APP].decode()
        attempt, not_before_ms, events = (int(fields[h]) for h in (ATTEMPT, NOT_BEFORE, EVENTS))
        source = fields.get(topics.DL_SOURCE, b"").decode()
    except (KeyError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidRetry(f"not a retry record: {type(exc).__name__}: {exc}"[:300]) from None
    if not app_id or attempt < 2 or events < 0:
        raise InvalidRetry(f"not a retry record: app {app_id!r}, attempt {attempt}")
    return Retry(app_id, attempt, not_before_ms, events, source, record.value)


def wait_s(not_before_ms: int, now_s: float, cap_s: float) -> float:
    """How long to wait before a retry due at ``not_before_ms``: never more than ``cap_s``
    (the longest backoff), whatever the clock of the process that scheduled it said."""
    return min(cap_s, max(0.0, not_before_ms / 1000 - now_s))
