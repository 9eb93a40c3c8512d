"""Small pieces every vendor client needs the same way, so that each rule is written once.

- credentials: ``required`` reads named fields of the app's stored mapping; ``parse_credentials``
  turns a bad mapping into ``AuthError`` (an operator must fix it; retrying cannot help).
  Messages name the field, never its value.
- text and ids: ``fit`` cuts text to a vendor's limit with an ellipsis; ``crc31`` makes the
  positive 31-bit notification ids several vendors take (collapse and revoke ids).
- time: ``seconds_left`` is what remains of a job's lifetime (the ttl vendors want);
  ``until_midnight`` is when a vendor's daily quota resets (Chinese vendors: midnight UTC+8).
- answers: ``every_target`` gives each device of a job the same outcome; ``decode_answer``
  reads a vendor's JSON answer, an unreadable one being transient (a proxy's error page, a
  truncated body).
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from typing import TypeVar

import msgspec

from proto.envelopes import VendorJob
from vendors.client import TargetResult
from vendors.errors import AuthError, TransientError

T = TypeVar("T")
C = TypeVar("C")

#: China Standard Time: where OPPO, vivo and Xiaomi reset their daily quotas.
CHINA = timezone(timedelta(hours=8))


def required(mapping: Mapping[str, str], vendor: str, *names: str) -> list[str]:
    """The values of ``names``, trimmed; ``ValueError`` names the first one missing or blank."""
    values = []
    for name in names:
        value = mapping.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{vendor} credentials lack {name!r}")
        values.append(value.strip())
    return values


def parse_credentials(parse: Callable[[Mapping[str, str]], C], mapping: Mapping[str, str]) -> C:
    """``parse(mapping)``, a ``ValueError`` raised as ``AuthError`` with the same message.

    Clients parse their app's credentials for every job, and parsing checks the private key
    (a PEM load: a tenth of an APNs sender's CPU with one device per job), so a parse is
    remembered for the same mapping; a refusal is not, and is checked again each time.
    """
    try:
        return _parsed(parse, tuple(sorted(mapping.items())))
    except ValueError as exc:
        raise AuthError(str(exc)) from None


@functools.lru_cache(maxsize=1024)
def _parsed(parse: Callable[[Mapping[str, str]], C], items: tuple[tuple[str, str], ...]) -> C:
    return parse(dict(items))


def fit(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def crc31(key: str) -> int:
    """A stable non-negative 31-bit id for ``key`` (CRC-32 with the sign bit cleared)."""
    return zlib.crc32(key.encode()) & 0x7FFF_FFFF


def seconds_left(expires_at_ms: int, now_s: float, max_s: int | None = None) -> int | None:
    """Whole seconds a job may still wait (0 once expired, at most ``max_s``); None when the
    job never expires, so that the vendor's default applies."""
    if not expires_at_ms:
        return None
    left = max(0, round(expires_at_ms / 1000 - now_s))
    return left if max_s is None else min(max_s, left)


def until_midnight(now_s: float, tz: tzinfo = CHINA) -> float:
    """Seconds from ``now_s`` to the next midnight in ``tz``, when daily quotas reset."""
    moment = datetime.fromtimestamp(now_s, tz)
    midnight = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - moment).total_seconds()


def every_target(job: VendorJob, error: str = "",
                 token_invalid: bool = False) -> list[TargetResult]:
    """The same outcome for every target of ``job``."""
    return [TargetResult(t.registration_id, error, token_invalid) for t in job.targets]


def decode_answer(decoder: msgspec.json.Decoder[T], content: bytes, vendor: str) -> T:
    """``content`` decoded; ``TransientError`` when it is not the answer the vendor documents."""
    try:
        return decoder.decode(content)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise TransientError(f"unreadable {vendor} answer: {exc}") from None
