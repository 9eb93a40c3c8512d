"""Huawei Push Kit receipts: verify the X-HUAWEI-CALLBACK-ID header, read the statuses. No I/O.

What Huawei documents: receipts are enabled in AppGallery Connect (project or app level, the
app's configuration winning), with the URL they are posted to (HTTPS, a certificate from a
commercial CA), a version (V1 or V2) and optionally a callback user name and a callback key. A
send request can pick a receipt configuration by ``message.android.receipt_id``, which Herald
sends when the credentials give ``receipt_id`` (``vendors.huawei``). The body is
``{"statuses": [...]}`` (``vendors.receipts.hms``); ``biTag`` is the ``bi_tag`` Herald sent: the
task id. The answer Huawei expects is HTTP 200 with ``{"code": "0", "message": "success"}``.

Huawei signs: when both user name and key are configured, every post carries
``X-HUAWEI-CALLBACK-ID: timestamp=<ms>;nonce=<uuid>;value=<base64>``, where value is
Base64(HMAC-SHA256(key, timestamp + nonce + user name)). The key of a receipt configuration
made today is Base64 and is used decoded; older ones were used as their UTF-8 bytes (Huawei's
example code says both): both are tried. Herald takes the user name and the key from the app's
Huawei credentials, ``receipt_user`` and ``receipt_secret``, and refuses the app's receipts
(403) until both are set: an unsigned receipt proves nothing. A header that is missing,
malformed, stale (timestamp more than ``WINDOW_MS`` away; a timestamp in seconds, as one
version of the documents has it, is read as such) or wrong is forged (401). The signature
covers no part of the body, so a signed header seen once could be replayed with another body
within the window; only HTTPS keeps it from being seen.

A status whose ``biTag`` is no Herald task id (the console's test receipt, a push sent by
something else) is ignored, so that "test receipt" in AppGallery Connect succeeds.

Sources: "开发消息回执" (optional; receipt configuration, signature and its example code),
https://developer.huawei.com/consumer/cn/doc/harmonyos-guides/push-msg-receipt; "Message
Receipt" API, https://developer.huawei.com/consumer/en/doc/doccenter-references/api/
push-api-msg-receipt; "消息回执API" (V1), https://developer.huawei.com/consumer/cn/doc/
HMS-References/push-receiptapi.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
from collections.abc import Mapping

from proto.limits import ID_RE
from vendors.receipts import hms
from vendors.receipts.errors import Forged, Unverifiable
from vendors.receipts.model import Post, Receipt

NAME = "huawei"
HEADER = "x-huawei-callback-id"
USER_FIELD, SECRET_FIELD = "receipt_user", "receipt_secret"
#: How far the header's timestamp may be from Herald's clock.
WINDOW_MS = 10 * 60 * 1000


def read(post: Post, credentials: Mapping[str, str], app_id: str) -> list[Receipt]:
    """The receipts of a verified post (see the module docstring)."""
    verify(post, credentials)
    return [hms.receipt(s, s.bi_tag if ID_RE.match(s.bi_tag) else "", NAME)
            for s in hms.statuses(post.body, NAME)]


def verify(post: Post, credentials: Mapping[str, str]) -> None:
    """Raise unless the post carries a valid X-HUAWEI-CALLBACK-ID for these credentials."""
    user, secret = credentials.get(USER_FIELD, ""), credentials.get(SECRET_FIELD, "")
    if not user or not secret:
        raise Unverifiable(f"the app's huawei credentials hold no {USER_FIELD!r} and "
                           f"{SECRET_FIELD!r}: its receipts cannot be verified")
    fields = _fields(post.headers.get(HEADER, ""))
    timestamp, nonce, value = (fields.get(k, "") for k in ("timestamp", "nonce", "value"))
    if not timestamp.isdigit() or not nonce or not value:
        raise Forged("no valid X-HUAWEI-CALLBACK-ID header")
    signed_ms = int(timestamp) if len(timestamp) > 11 else int(timestamp) * 1000
    if abs(post.now_ms - signed_ms) > WINDOW_MS:
        raise Forged("the X-HUAWEI-CALLBACK-ID timestamp is out of the window")
    message = f"{timestamp}{nonce}{user}".encode()
    if not any(hmac.compare_digest(signature(key, message), value) for key in _keys(secret)):
        raise Forged("the X-HUAWEI-CALLBACK-ID signature does not verify")


def signature(key: bytes, message: bytes) -> str:
    """Base64 of HMAC-SHA256, as the header's ``value``."""
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def _keys(secret: str) -> list[bytes]:
    keys = [secret.encode()]
    with contextlib.suppress(binascii.Error, ValueError):
        keys.insert(0, base64.b64decode(secret, validate=True))
    return keys


def _fields(header: str) -> dict[str, str]:
    pairs = (part.strip().partition("=") for part in header.split(";"))
    return {name.strip().lower(): value.strip() for name, _, value in pairs if name}
