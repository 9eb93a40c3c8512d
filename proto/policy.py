"""An app's delivery policy: quiet hours and a frequency cap. No I/O.

``AppPolicy`` is the body of ``PUT /v1/policy`` and what the store keeps (JSON). Both parts are
optional; neither touches urgent pushes (``PushContent.urgent``), recalls, fallbacks (second
attempts at devices counted once already) or pass-through messages (``kind == "data"``), which
show nothing to the user.

Quiet hours (``QuietHours``): from ``start`` to ``end`` in the device's local time (the IANA
zone of its REGISTER, ``DeviceRecord.tz``; ``tz`` of the window for a device without one or with
a zone that is not one), non-urgent pushes wait and then go. ``quiet_until`` says until when.

Frequency cap (``FrequencyCap``): at most ``count`` pushes per account in any ``period_s``
(a sliding window), a device without an account counting as its own. A push counts once per
account, however many of its devices, shards or replays reach it. What the cap holds back is a
``failed`` event with reason ``frequency_capped``.
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from proto.errors import DecodeError
from proto.limits import MAX_CAP_COUNT, MAX_CAP_PERIOD_S, MIN_CAP_PERIOD_S

#: A local time of day: ``HH:MM`` or ``HH:MM:SS``, 24-hour clock.
CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?\Z"
#: The longest zone name taken (as the device protocol's ``tz``).
MAX_ZONE = 64
# IANA names: relative paths of letters, digits and _+-, no empty, dot or dot-dot parts.
_ZONE_RE = re.compile(r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*\Z")

Clock = Annotated[str, msgspec.Meta(pattern=CLOCK_PATTERN, examples=["22:00", "07:30:00"])]
Zone = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ZONE,
                                   examples=["UTC", "Europe/Berlin"])]


@functools.lru_cache(maxsize=4096)
def _zone(name: str) -> ZoneInfo | None:
    if len(name) > MAX_ZONE or not _ZONE_RE.match(name):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # Not found, not a TZif file, or a directory ("America").
        return None


def is_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this host knows."""
    return _zone(name) is not None


def _clock(value: str) -> time:
    return time.fromisoformat(value)


class QuietHours(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A daily window of local time, ``start`` included, ``end`` excluded; ``start`` later
    than ``end`` crosses midnight (22:00 to 07:00). ``tz`` is the zone of devices that name
    none (or name one that is not a zone)."""

    start: Clock
    end: Clock
    tz: Zone = "UTC"

    def __post_init__(self) -> None:
        if _clock(self.start) == _clock(self.end):
            raise ValueError(f"quiet hours start and end at {self.start}: an empty window; "
                             "give start and end different times")
        if not is_zone(self.tz):
            raise ValueError(f"{self.tz!r} is not an IANA time zone (such as "
                             "'Europe/Berlin' or 'UTC')")


class FrequencyCap(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """At most ``count`` non-urgent pushes per account in any ``period_s`` seconds."""

    count: Annotated[int, msgspec.Meta(ge=1, le=MAX_CAP_COUNT)]
    period_s: Annotated[int, msgspec.Meta(ge=MIN_CAP_PERIOD_S, le=MAX_CAP_PERIOD_S)]


class AppPolicy(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """An app's delivery policy; a part left out (or null) is not applied."""

    quiet_hours: QuietHours | None = None
    frequency_cap: FrequencyCap | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AppPolicy)


def encode_policy(policy: AppPolicy) -> bytes:
    """The policy as JSON."""
    return _encoder.encode(policy)


def decode_policy(data: bytes) -> AppPolicy:
    """Decode a JSON policy; ``DecodeError`` names the first bad field."""
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise DecodeError(f"invalid policy: {exc}") from None


def cap_subject(account: str, registration_id: str) -> str:
    """What a frequency cap counts for a device: its account, or ``:`` and its registration
    id if it has none (``:`` is in no account id, so the two never meet)."""
    return account or f":{registration_id}"


def device_zone(device_tz: str, window: QuietHours) -> str:
    """The zone quiet hours apply in for a device: its own if it is a zone, else the
    window's."""
    return device_tz if is_zone(device_tz) else window.tz


def _instant(day: date, clock: time, zone: ZoneInfo) -> int:
    """Epoch seconds of wall time ``clock`` on ``day`` in ``zone``: of its first occurrence if
    the clocks went back over it (fold 0), of the first instant after it if they skipped it
    (the end of the gap)."""
    wall = datetime.combine(day, clock)
    first = int(wall.replace(tzinfo=zone, fold=0).timestamp())
    if datetime.fromtimestamp(first, zone).replace(tzinfo=None) == wall:
        return first
    # In a gap, fold 0 reads the wall time with the offset before the change and fold 1 with
    # the one after: the change lies between them, and local time rises through it, so the
    # first second whose local time is at least ``wall`` is the end of the gap.
    low, high = int(wall.replace(tzinfo=zone, fold=1).timestamp()), first
    while low < high:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, zone).replace(tzinfo=None) >= wall:
            high = mid
        else:
            low = mid + 1
    return low


def quiet_until(now_ms: int, tz: str, window: QuietHours) -> int | None:
    """None if ``now_ms`` is outside the quiet hours ``window`` in zone ``tz``; else the
    epoch ms at which they end.

    Rules:

    - Each day's window runs from its ``start`` to the next ``end`` in local wall time:
      ``start`` included, ``end`` excluded; ``start`` after ``end`` ends the next day. A
      window across a DST change is shorter or longer by the change (22:00 to 08:00 is 9 h
      on a spring-forward night, 11 h on a fall-back night): it ends at 08:00 local.
    - A ``start`` or ``end`` that the clocks skip (02:30 on 2026-03-08 in America/New_York)
      is the first instant after the gap (03:00 EDT).
    - A ``start`` or ``end`` that the clocks pass twice (01:30 on 2026-11-01 in New York) is
      its first occurrence (fold 0). So a window ending at 01:30 ends at 01:30 EDT, and the
      repeated 01:00 to 01:30 EST after it is not quiet.

    ``tz`` must be a zone (``is_zone``; ``device_zone`` picks one for a device), else
    ``ValueError``.
    """
    zone = _zone(tz)
    if zone is None:
        raise ValueError(f"{tz!r} is not an IANA time zone")
    start, end = _clock(window.start), _clock(window.end)
    today = datetime.fromtimestamp(now_ms // 1000, zone).date()
    # The window that began yesterday may not have ended yet; the one of tomorrow has not
    # begun (a window is shorter than a day plus a DST change).
    for day in (today - timedelta(days=1), today):
        begins = _instant(day, start, zone)
        ends = _instant(day + timedelta(days=1) if start > end else day, end, zone)
        if begins * 1000 <= now_ms < ends * 1000:
            return ends * 1000
    return None
