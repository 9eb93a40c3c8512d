"""Delivery events: JSON round trips, omitted defaults, and rejections."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proto.errors import DecodeError
from proto.events import Channel, Event, Reason, Stage, decode_event, encode_event, now_ms


def test_minimal_event_round_trips():
    event = Event(stage=Stage.SENT, task_id="t1")
    assert decode_event(encode_event(event)) == event


def test_full_event_round_trips():
    event = Event(stage=Stage.FAILED, task_id="t1", app_id="a", msg_id="m", registration_id="r",
                  channel="fcm", reason=Reason.TOKEN_INVALID, node="n1", detail="gone",
                  ts_ms=1_700_000_000_000)
    assert decode_event(encode_event(event)) == event


@pytest.mark.parametrize("stage", list(Stage))
def test_every_stage_round_trips(stage):
    assert decode_event(encode_event(Event(stage=stage, task_id="t"))).stage is stage


def test_defaults_are_omitted_from_json():
    encoded = json.loads(encode_event(Event(stage=Stage.DELIVERED, task_id="t1", reason="")))
    assert "reason" not in encoded
    assert encoded == {"stage": "delivered", "task_id": "t1"}


def test_set_fields_are_encoded():
    encoded = json.loads(encode_event(Event(stage=Stage.FAILED, task_id="t", reason="offline",
                                            channel=Channel.ONLINE)))
    assert encoded == {"stage": "failed", "task_id": "t", "reason": "offline", "channel": "online"}


def test_unknown_fields_are_ignored():
    assert decode_event(b'{"stage":"sent","task_id":"t","new_field":1}') == Event(
        stage=Stage.SENT, task_id="t")


def test_now_ms_is_wall_clock_milliseconds():
    assert 1_600_000_000_000 < now_ms() < 10_000_000_000_000


@pytest.mark.parametrize(("data", "reason"), [
    pytest.param(b"", "truncated", id="empty"),
    pytest.param(b'{"stage":"sent",', "truncated", id="truncated-json"),
    pytest.param(b"not json", "malformed", id="not-json"),
    pytest.param(b"[]", "Expected `object`, got `array`", id="array"),
    pytest.param(b'{"stage":"lost","task_id":"t"}', r"Invalid enum value 'lost'.*\$\.stage",
                 id="unknown-stage"),
    pytest.param(b'{"stage":"SENT","task_id":"t"}', r"Invalid enum value 'SENT'.*\$\.stage",
                 id="stage-wrong-case"),
    pytest.param(b'{"task_id":"t"}', "missing required field `stage`", id="stage-missing"),
    pytest.param(b'{"stage":"sent"}', "missing required field `task_id`", id="task-id-missing"),
    pytest.param(b'{"stage":"sent","task_id":1}', r"Expected `str`.*\$\.task_id",
                 id="task-id-int"),
    pytest.param(b'{"stage":"sent","task_id":"t","ts_ms":"1"}', r"Expected `int`.*\$\.ts_ms",
                 id="ts-str"),
])
def test_bad_event_is_rejected(data, reason):
    with pytest.raises(DecodeError, match=f"^invalid event: .*{reason}"):
        decode_event(data)


@pytest.mark.parametrize("data", [
    b'{"stage":"sent","task_id":"\xff"}',
    b'{"stage":"sent","task_id":"t","detail":"ab\xc3"}',
], ids=["task-id", "detail-truncated-sequence"])
def test_invalid_utf8_in_event_raises_decode_error(data):
    with pytest.raises(DecodeError, match=r"^invalid event: .*(?i:utf-8)"):
        decode_event(data)


@pytest.mark.parametrize("data", [
    b'{"stage":"sent","task_id":"t","\xff":1}',
    b'{"stage":"sent","task_id":"t","new_field":"\xff"}',
], ids=["unknown-key", "unknown-value"])
def test_invalid_utf8_in_an_ignored_field_is_skipped_or_rejected(data):
    # Unknown fields are skipped without being decoded, so msgspec may not look at their bytes;
    # either outcome is fine as long as nothing but DecodeError escapes.
    try:
        event = decode_event(data)
    except DecodeError:
        return
    assert event == Event(stage=Stage.SENT, task_id="t")


@given(data=st.binary(max_size=256))
def test_arbitrary_bytes_only_raise_decode_error(data):
    try:
        decode_event(data)
    except DecodeError as err:
        assert err.reason.startswith("invalid event: ")


def test_channels_are_online_and_inbox():
    assert list(Channel) == [Channel.ONLINE, Channel.INBOX]
    assert not hasattr(Channel, "NONE")


def test_an_event_names_one_device_or_many():
    one = Event(stage=Stage.SENT, task_id="t", registration_id="r1")
    many = Event(stage=Stage.TARGETED, task_id="t", registration_ids=["r1", "r2"],
                 platform="ios")
    assert (one.devices(), many.devices()) == (["r1"], ["r1", "r2"])
    assert Event(stage=Stage.REJECTED, task_id="t").devices() == []
    assert decode_event(encode_event(many)) == many


def test_event_without_channel_omits_it():
    encoded = json.loads(encode_event(Event(stage=Stage.FAILED, task_id="t",
                                            reason=Reason.NO_CHANNEL)))
    assert encoded == {"stage": "failed", "task_id": "t", "reason": "no_channel"}
