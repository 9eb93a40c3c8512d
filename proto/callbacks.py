"""Callbacks to the app: which events an app wants posted to its URL, and how posts are signed.

No I/O. An app registers a URL and the stages it wants (``CallbackConfig``); ``herald
callbacks`` posts those events to it in batches (``CallbackBatch``, JSON), each signed with
HMAC-SHA256 under the app's callback secret over ``"<timestamp>.<body>"``, sent as the headers
``X-Herald-Timestamp`` (Unix seconds) and ``X-Herald-Signature`` (``sha256=<hex>``), so the
receiver can check both who sent it and that it is not an old post replayed.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

import msgspec

from proto.events import Event, Stage

#: Headers of a callback post.
TIMESTAMP_HEADER = "X-Herald-Timestamp"
SIGNATURE_HEADER = "X-Herald-Signature"
#: Longest callback URL.
MAX_URL = 2048
#: Events one post carries at most.
MAX_BATCH = 500

Url = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s]+$", max_length=MAX_URL)]


class CallbackConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Where an app wants its events, and which stages. ``secret`` signs the posts; Herald
    makes it when the config is set and shows it then."""

    url: Url
    stages: Annotated[list[Stage], msgspec.Meta(min_length=1)]
    secret: str = ""


class CallbackBatch(msgspec.Struct, kw_only=True, frozen=True):
    """The body of one callback post."""

    app_id: str
    events: list[Event]


_config = msgspec.json.Decoder(CallbackConfig)
_json = msgspec.json.Encoder()


def encode_config(config: CallbackConfig) -> bytes:
    """A config as the store keeps it (JSON)."""
    return _json.encode(config)


def decode_config(data: bytes) -> CallbackConfig:
    """A config as the store keeps it; ``msgspec`` errors if it is not one."""
    return _config.decode(data)


def encode_batch(batch: CallbackBatch) -> bytes:
    """The JSON body of a callback post."""
    return _json.encode(batch)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Herald-Signature`` value of a post."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: int, body: bytes, signed: str) -> bool:
    """Whether ``signed`` is the signature of this post (constant time)."""
    return hmac.compare_digest(signature(secret, timestamp, body), signed)
