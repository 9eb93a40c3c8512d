"""What every vendor module reads a receipt post into, and the helpers they share. No I/O.

A vendor module (``huawei``, ``honor``, ``xiaomi``, ``oppo``, ``vivo``) exposes ``NAME`` and
``read(post, credentials, app_id) -> list[Receipt]``: it verifies the post where that can be
done (raising ``Forged`` or ``Unverifiable``), decodes it (raising ``Malformed``) and says per
receipt which task, which vendor tokens and what became of the message. A receipt Herald did
not ask for (no Herald task in it) or a state Herald does not report (a message held or cached
by the vendor, still on its way) has no ``stage``: it is counted as ignored, never published.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from proto.events import Stage
from vendors.receipts.errors import Malformed

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Post:
    """A receipt post as it arrived: the body, the headers (lower-case names), the time."""

    body: bytes
    headers: Mapping[str, str]
    now_ms: int


@dataclass(frozen=True, slots=True)
class Receipt:
    """What one receipt says of a message sent to some of a vendor's tokens."""

    task_id: str
    tokens: tuple[str, ...]
    #: delivered, clicked or failed; None for a receipt Herald does not report (ignored).
    stage: Stage | None
    #: ``proto.events.Reason`` of a failure.
    reason: str = ""
    #: The vendor's own word for it (its status code), for the event's ``detail``.
    detail: str = ""


Reader = Callable[[Post, Mapping[str, str], str], list[Receipt]]


def decode(body: bytes | str, kind: type[T], vendor: str) -> T:
    """``body`` decoded as JSON of ``kind``; ``Malformed`` (naming the vendor) otherwise."""
    try:
        return msgspec.json.decode(body, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Malformed(f"not a {vendor} receipt: {exc}") from None


def targets(value: str | list[str]) -> tuple[str, ...]:
    """Tokens as vendors list them: a comma-separated string or a JSON array."""
    items = value.split(",") if isinstance(value, str) else value
    return tuple(dict.fromkeys(t.strip() for t in items if t.strip()))


def code(value: Any) -> int | None:
    """A status code that may come as a number or a numeric string; None if it is neither."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None
