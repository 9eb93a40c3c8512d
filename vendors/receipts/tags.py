"""The receipt tag: the task id Herald asks a vendor to echo in its receipts, signed. No I/O.

Xiaomi, OPPO and vivo sign nothing they post back, and Honor's receipt documents could not be
read; but each echoes a string Herald chose when it sent the message (Xiaomi
``extra.callback.param``, OPPO ``call_back_parameter``, vivo ``extra.callback.param``, Honor
``biTag``). Herald puts a tag there, ``<task id>~<mac>``: the mac is the first ``MAC_CHARS``
characters of the base64url HMAC-SHA256, under the app's receipt key, of vendor, app id and
task id. Only Herald (the vendor senders and ``herald receipts``, which both read the app's
credentials) can make a tag that verifies, so a receipt post whose tags do not verify is
refused as forged, and one for another app's task cannot pass as this app's.

``~`` is outside the id alphabet (``proto.limits.ID_PATTERN``) and base64url, so a tag splits
at its last ``~``. A tag must fit the vendor's limit for the echoed string (Xiaomi 64 bytes,
OPPO 50 characters): a task id too long for it gets no receipt request (``callback`` returns
None) rather than a cut tag that could not be read back.

The receipt key is the credential field ``receipt_key`` where the app sets one, else the
vendor's own secret (``key_of``). A dedicated key survives a rotation of the vendor secret;
without one, receipts of messages sent under the old secret are refused once it is rotated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from proto.limits import ID_RE
from vendors.receipts.errors import Forged, Malformed, Unverifiable

SEPARATOR = "~"
#: 60 bits of HMAC: far beyond guessing over HTTP, short enough for OPPO's 50 characters.
MAC_CHARS = 10
#: Credential fields (the same in every vendor's credentials that take them).
URL_FIELD = "receipt_url"
KEY_FIELD = "receipt_key"
MAX_URL = 2048


@dataclass(frozen=True, slots=True)
class Callback:
    """Where a vendor is to post the receipts of one message, and the tag it is to echo."""

    url: str
    param: str


def mac(key: str, vendor: str, app_id: str, task_id: str) -> str:
    """The tag's mac for this task of this app at this vendor."""
    digest = hmac.new(key.encode(), f"herald-receipt\n{vendor}\n{app_id}\n{task_id}".encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:MAC_CHARS]


def tag(key: str, vendor: str, app_id: str, task_id: str) -> str:
    """The signed tag of a task."""
    return f"{task_id}{SEPARATOR}{mac(key, vendor, app_id, task_id)}"


def is_tag(value: str) -> bool:
    """Whether ``value`` claims to be a Herald tag (and so must verify)."""
    return SEPARATOR in value


def open_tag(key: str, vendor: str, app_id: str, value: str) -> str:
    """The task id of a tag; ``Forged`` if its mac is wrong, ``Malformed`` if it is not one."""
    task_id, separator, signed = value.rpartition(SEPARATOR)
    if not separator or not ID_RE.match(task_id) or len(signed) != MAC_CHARS:
        raise Malformed("a receipt tag is not <task id>~<mac>")
    if not hmac.compare_digest(signed, mac(key, vendor, app_id, task_id)):
        raise Forged("a receipt tag does not verify under the app's receipt key")
    return task_id


def task_of(credentials: Mapping[str, str], secret_field: str, vendor: str, app_id: str,
            value: str) -> str:
    """The task a receipt's echoed string names: "" when it is no Herald tag (a receipt Herald
    did not ask for); ``Forged`` or ``Malformed`` when it is a tag that does not open, and
    ``Unverifiable`` when the app's credentials hold no receipt key to open it with."""
    if not is_tag(value):
        return ""
    key = key_of(credentials, secret_field)
    if not key:
        raise Unverifiable(f"the app's {vendor} credentials hold no {KEY_FIELD!r}")
    return open_tag(key, vendor, app_id, value)


def receipt_url(mapping: Mapping[str, str], vendor: str, limit: int = MAX_URL) -> str:
    """The optional ``receipt_url`` of a vendor's credentials ("" when not set); ``ValueError``
    (naming the field) when it is not an http(s) URL of at most ``limit`` characters."""
    url = mapping.get(URL_FIELD, "").strip()
    if url and (not url.startswith(("https://", "http://")) or len(url) > limit
                or any(c.isspace() for c in url)):
        raise ValueError(f"{vendor} credentials: {URL_FIELD!r} must be an http(s) URL of at "
                         f"most {limit} characters")
    return url


def key_of(mapping: Mapping[str, str], secret_field: str) -> str:
    """The receipt key: ``receipt_key`` when set, else the vendor secret ``secret_field``."""
    return mapping.get(KEY_FIELD, "").strip() or mapping.get(secret_field, "").strip()


def callback(url: str, key: str, vendor: str, app_id: str, task_id: str,
             limit: int) -> Callback | None:
    """The receipt request of a message, or None: no URL, or a tag over ``limit`` bytes."""
    if not url or not key:
        return None
    param = tag(key, vendor, app_id, task_id)
    return Callback(url, param) if len(param.encode()) <= limit else None
