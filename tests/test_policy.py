"""``proto.policy``: the policy bodies and their checks, and ``quiet_until`` across windows
that cross midnight, seconds, both DST changes in New York, Berlin and Sydney, the gap and
the fold."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proto.errors import DecodeError
from proto.limits import MAX_CAP_PERIOD_S
from proto.policy import (
    AppPolicy,
    FrequencyCap,
    QuietHours,
    cap_subject,
    decode_policy,
    device_zone,
    encode_policy,
    is_zone,
    quiet_until,
)

NY, BERLIN, SYDNEY = "America/New_York", "Europe/Berlin", "Australia/Sydney"


def utc(*parts: int) -> int:
    """Epoch ms of a UTC time."""
    return int(datetime(*parts, tzinfo=UTC).timestamp()) * 1000


def window(start: str, end: str, tz: str = "UTC") -> QuietHours:
    return QuietHours(start=start, end=end, tz=tz)


def test_a_daytime_window_includes_its_start_and_excludes_its_end():
    day = window("09:00", "17:00")
    assert quiet_until(utc(2026, 6, 1, 9), "UTC", day) == utc(2026, 6, 1, 17)
    assert quiet_until(utc(2026, 6, 1, 12, 30), "UTC", day) == utc(2026, 6, 1, 17)
    assert quiet_until(utc(2026, 6, 1, 17) - 1, "UTC", day) == utc(2026, 6, 1, 17)
    assert quiet_until(utc(2026, 6, 1, 17), "UTC", day) is None
    assert quiet_until(utc(2026, 6, 1, 9) - 1, "UTC", day) is None
    assert quiet_until(utc(2026, 6, 1, 3), "UTC", day) is None


def test_a_window_across_midnight_in_the_devices_zone():
    night = window("22:00", "07:00")
    shanghai = "Asia/Shanghai"  # UTC+8, no DST
    # 23:00 local: until 07:00 local the next day.
    assert quiet_until(utc(2026, 6, 1, 15), shanghai, night) == utc(2026, 6, 1, 23)
    # 03:00 local: until 07:00 local the same day.
    assert quiet_until(utc(2026, 6, 1, 19), shanghai, night) == utc(2026, 6, 1, 23)
    assert quiet_until(utc(2026, 6, 1, 14), shanghai, night) == utc(2026, 6, 1, 23)
    assert quiet_until(utc(2026, 6, 1, 14) - 1, shanghai, night) is None
    assert quiet_until(utc(2026, 6, 1, 23), shanghai, night) is None
    assert quiet_until(utc(2026, 6, 1, 4), shanghai, night) is None
    # The same instant in UTC is midday: not quiet there.
    assert quiet_until(utc(2026, 6, 1, 12), "UTC", night) is None


def test_times_with_seconds():
    night = window("22:00:30", "06:15:45")
    assert quiet_until(utc(2026, 6, 1, 22, 0, 29), "UTC", night) is None
    assert quiet_until(utc(2026, 6, 1, 22, 0, 30), "UTC", night) == utc(2026, 6, 2, 6, 15, 45)
    assert quiet_until(utc(2026, 6, 2, 6, 15, 44), "UTC", night) == utc(2026, 6, 2, 6, 15, 45)
    assert quiet_until(utc(2026, 6, 2, 6, 15, 45), "UTC", night) is None


@pytest.mark.parametrize(("tz", "start", "inside", "end"), [
    # New York springs forward on 2026-03-08 at 02:00 EST: 22:00 EST to 08:00 EDT, 9 hours.
    (NY, utc(2026, 3, 8, 3), utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 12)),
    # ... and falls back on 2026-11-01 at 02:00 EDT: 22:00 EDT to 08:00 EST, 11 hours.
    (NY, utc(2026, 11, 1, 2), utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 13)),
    # Berlin: 2026-03-29 at 02:00 CET (22:00 CET to 08:00 CEST) ...
    (BERLIN, utc(2026, 3, 28, 21), utc(2026, 3, 29, 1), utc(2026, 3, 29, 6)),
    # ... and 2026-10-25 at 03:00 CEST (22:00 CEST to 08:00 CET).
    (BERLIN, utc(2026, 10, 24, 20), utc(2026, 10, 25, 1), utc(2026, 10, 25, 7)),
    # Sydney, southern hemisphere: DST ends 2026-04-05 at 03:00 AEDT (22:00 AEDT to 08:00
    # AEST) and begins 2026-10-04 at 02:00 AEST (22:00 AEST to 08:00 AEDT).
    (SYDNEY, utc(2026, 4, 4, 11), utc(2026, 4, 4, 16), utc(2026, 4, 4, 22)),
    (SYDNEY, utc(2026, 10, 3, 12), utc(2026, 10, 3, 16), utc(2026, 10, 3, 21)),
])
def test_a_night_across_a_dst_change_ends_at_the_local_end(tz, start, inside, end):
    night = window("22:00", "08:00")
    assert quiet_until(start - 1, tz, night) is None
    for now in (start, inside, end - 1):
        assert quiet_until(now, tz, night) == end
    assert quiet_until(end, tz, night) is None


def test_an_end_in_the_spring_forward_gap_is_the_end_of_the_gap():
    # 02:30 does not exist in New York on 2026-03-08: the window ends at 03:00 EDT.
    early = window("01:00", "02:30", NY)
    assert quiet_until(utc(2026, 3, 8, 6, 59, 59), NY, early) == utc(2026, 3, 8, 7)
    assert quiet_until(utc(2026, 3, 8, 7), NY, early) is None
    # The day before, 02:30 EST is an ordinary time.
    assert quiet_until(utc(2026, 3, 7, 7), NY, early) == utc(2026, 3, 7, 7, 30)


def test_a_start_in_the_gap_starts_at_the_end_of_the_gap():
    late = window("02:30", "05:00", NY)
    assert quiet_until(utc(2026, 3, 8, 7) - 1, NY, late) is None
    assert quiet_until(utc(2026, 3, 8, 7), NY, late) == utc(2026, 3, 8, 9)


def test_an_end_passed_twice_at_fall_back_is_its_first_occurrence():
    # 01:30 comes twice in New York on 2026-11-01: EDT (05:30Z), then EST (06:30Z).
    night = window("23:00", "01:30", NY)
    assert quiet_until(utc(2026, 11, 1, 5, 15), NY, night) == utc(2026, 11, 1, 5, 30)
    assert quiet_until(utc(2026, 11, 1, 5, 30), NY, night) is None
    # 01:15 EST, the second time the clock reads 01:15: the window ended already.
    assert quiet_until(utc(2026, 11, 1, 6, 15), NY, night) is None


def test_a_start_passed_twice_is_its_first_occurrence():
    dawn = window("01:30", "03:00", NY)
    assert quiet_until(utc(2026, 11, 1, 5, 30) - 1, NY, dawn) is None
    # From 01:30 EDT through the repeated hour to 03:00 EST.
    for now in (utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 45)):
        assert quiet_until(now, NY, dawn) == utc(2026, 11, 1, 8)
    # Berlin: 02:30 comes twice on 2026-10-25; a window ending then ends at 02:30 CEST.
    assert quiet_until(utc(2026, 10, 25, 0), BERLIN, window("01:00", "02:30")) == utc(
        2026, 10, 25, 0, 30)


@settings(max_examples=300, deadline=None)
@given(now=st.integers(utc(2026, 1, 1), utc(2027, 1, 1)),
       tz=st.sampled_from([NY, BERLIN, SYDNEY, "Asia/Kolkata", "Australia/Lord_Howe", "UTC"]),
       start=st.integers(0, 86399), length=st.integers(1, 86399))
def test_a_window_ends_once_and_after_now(now, tz, start, length):
    def clock(seconds: int) -> str:
        return f"{seconds // 3600:02}:{seconds // 60 % 60:02}:{seconds % 60:02}"

    quiet = window(clock(start), clock((start + length) % 86400))
    end = quiet_until(now, tz, quiet)
    if end is not None:
        assert now < end <= now + 25 * 3600 * 1000
        assert quiet_until(end - 1, tz, quiet) == end
        assert quiet_until(end, tz, quiet) is None


def test_zones():
    assert is_zone("UTC") and is_zone(NY) and is_zone("Asia/Calcutta")
    for name in ("", "Mars/Olympus", "America", "America/", "../etc/passwd", "/etc/localtime",
                 "utc", "a\x00b", "A" * 65, "Europe/../UTC"):
        assert not is_zone(name), name
    quiet = window("22:00", "07:00", BERLIN)
    assert device_zone(NY, quiet) == NY
    assert device_zone("", quiet) == BERLIN
    assert device_zone("Not/A_Zone", quiet) == BERLIN
    with pytest.raises(ValueError, match="not an IANA time zone"):
        quiet_until(utc(2026, 1, 1), "Not/A_Zone", quiet)


def test_cap_subjects_of_accounts_and_devices_never_meet():
    assert cap_subject("alice@example.com", "rid-1") == "alice@example.com"
    assert cap_subject("", "rid-1") == ":rid-1"
    assert cap_subject("", "rid-1") != cap_subject("rid-1", "rid-2")


def test_a_policy_round_trips():
    policy = AppPolicy(quiet_hours=window("22:00", "07:30:15", BERLIN),
                       frequency_cap=FrequencyCap(count=3, period_s=86400))
    assert decode_policy(encode_policy(policy)) == policy
    assert decode_policy(b"{}") == AppPolicy()
    assert decode_policy(b'{"quiet_hours": {"start": "22:00", "end": "07:00"}}').quiet_hours \
        == window("22:00", "07:00", "UTC")


@pytest.mark.parametrize(("body", "says"), [
    ({"quiet_hours": {"start": "24:00", "end": "07:00"}}, "quiet_hours.start"),
    ({"quiet_hours": {"start": "7:00", "end": "08:00"}}, "quiet_hours.start"),
    ({"quiet_hours": {"start": "22:00", "end": "07:60"}}, "quiet_hours.end"),
    ({"quiet_hours": {"start": "22:00", "end": "07:00:60"}}, "quiet_hours.end"),
    ({"quiet_hours": {"start": "22:00", "end": "22:00:00"}}, "empty window"),
    ({"quiet_hours": {"start": "22:00", "end": "07:00", "tz": "Mars/Olympus"}},
     "'Mars/Olympus' is not an IANA time zone"),
    ({"quiet_hours": {"start": "22:00", "end": "07:00", "tz": "America"}}, "not an IANA"),
    ({"quiet_hours": {"start": "22:00", "end": "07:00", "tz": ""}}, "quiet_hours.tz"),
    ({"quiet_hours": {"start": "22:00"}}, "end"),
    ({"quiet_hours": {"start": "22:00", "end": "07:00", "days": [1]}}, "days"),
    ({"frequency_cap": {"count": 0, "period_s": 3600}}, "frequency_cap.count"),
    ({"frequency_cap": {"count": 2, "period_s": 59}}, "frequency_cap.period_s"),
    ({"frequency_cap": {"count": 2, "period_s": MAX_CAP_PERIOD_S + 1}}, "period_s"),
    ({"frequency_cap": {"count": 2}}, "period_s"),
    ({"frequency_cap": {"count": "2", "period_s": 3600}}, "count"),
    ({"quiet": {}}, "quiet"),
])
def test_bad_policies_are_refused_with_the_field(body, says):
    with pytest.raises(DecodeError) as caught:
        decode_policy(msgspec.json.encode(body))
    assert says in caught.value.reason, caught.value.reason
