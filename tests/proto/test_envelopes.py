"""Push requests (public JSON) and internal msgpack records: round trips and rejections."""

from __future__ import annotations

import json

import msgpack
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proto import frames
from proto.envelopes import (
    AppRecord,
    DeviceRecord,
    Fallback,
    NodeDelivery,
    NodeKick,
    NodeRecall,
    PushRequest,
    VendorJob,
    VendorTarget,
    decode_app_record,
    decode_device_record,
    decode_fallback,
    decode_node_entry,
    decode_push_request,
    decode_vendor_job,
    encode_internal,
    encode_push_request,
)
from proto.errors import DecodeError
from proto.limits import (
    MAX_BODY,
    MAX_DATA_BYTES,
    MAX_DATA_KEYS,
    MAX_FRAME_BYTES,
    MAX_LIFETIME_S,
    MAX_SERVER_FRAME_BYTES,
    MAX_TARGETS,
    MAX_TITLE,
    MAX_VENDOR_TOKEN,
)
from proto.message import ClickAction, Message

MINIMAL_MESSAGE = {"title": "Hi"}
MINIMAL = {"task_id": "task-1", "app_id": "app.1", "registration_ids": ["dev_1"],
           "message": MINIMAL_MESSAGE}
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


def drop_ellipsis(body: dict) -> dict:
    return {k: v for k, v in body.items() if v is not ...}


def msg(**changes) -> dict:
    """The minimal message with ``changes`` (a value of ``...`` removes that field)."""
    return drop_ellipsis({**MINIMAL_MESSAGE, **changes})


def request(**changes) -> bytes:
    """The minimal push request with top-level ``changes`` (``...`` removes a field)."""
    return json.dumps(drop_ellipsis({**MINIMAL, **changes})).encode()


def with_message(**changes) -> bytes:
    """The minimal push request whose message has ``changes``."""
    return request(message=msg(**changes))


# --- push request: good input ------------------------------------------------------------------


def test_minimal_request_decodes_with_defaults():
    req = decode_push_request(request())
    assert req == PushRequest(task_id="task-1", app_id="app.1", registration_ids=["dev_1"],
                              message=Message(title="Hi"))
    assert (req.push_flag, req.lifetime_s) == (0, 0)
    m = req.message
    assert (m.kind, m.body, m.data, m.badge, m.badge_add, m.click) == (
        "notify", "", {}, None, None, ClickAction())


def test_minimal_request_round_trips():
    req = decode_push_request(request())
    assert decode_push_request(encode_push_request(req)) == req


def test_encoded_request_omits_defaults():
    req = decode_push_request(request())
    assert json.loads(encode_push_request(req)) == MINIMAL


def test_full_request_round_trips():
    req = PushRequest(
        task_id="T" * 64, app_id="a-b_c.d", registration_ids=[f"r{i}" for i in range(MAX_TARGETS)],
        push_flag=1, lifetime_s=MAX_LIFETIME_S,
        message=Message(kind="data", title="t" * MAX_TITLE, body="b" * MAX_BODY,
                        data={"s": "x", "i": -3, "f": 2.5, "b": False, "n": None,
                              "max": INT64_MAX, "min": INT64_MIN},
                        badge=7, sound="ding", click=ClickAction(type="url", target="https://x"),
                        priority="high", push_type="background", collapse_id="c" * 64))
    assert decode_push_request(encode_push_request(req)) == req


@pytest.mark.parametrize("changes", [
    pytest.param({"message": msg(title=..., body="only a body")}, id="body-only"),
    pytest.param({"message": msg(title="t" * MAX_TITLE)}, id="title-max"),
    pytest.param({"message": msg(body="b" * MAX_BODY)}, id="body-max"),
    pytest.param({"lifetime_s": MAX_LIFETIME_S}, id="lifetime-max"),
    pytest.param({"lifetime_s": 0}, id="lifetime-zero"),
    pytest.param({"push_flag": 1}, id="push-flag-1"),
    pytest.param({"message": {"kind": "data", "data": {"k": 1}}}, id="data-without-text"),
    pytest.param({"message": msg(data={f"k{i}": i for i in range(MAX_DATA_KEYS)})},
                 id="data-max-keys"),
    pytest.param({"message": msg(data={"max": INT64_MAX, "min": INT64_MIN})},
                 id="data-int64-bounds"),
    pytest.param({"registration_ids": ["r"] * MAX_TARGETS}, id="max-targets"),
    pytest.param({"registration_ids": ["r" * 64]}, id="rid-64-chars"),
])
def test_boundary_request_is_accepted(changes):
    decode_push_request(request(**changes))


def test_data_of_exactly_max_bytes_is_accepted():
    overhead = len(json.dumps({"k": ""}, separators=(",", ":")))
    data = {"k": "x" * (MAX_DATA_BYTES - overhead)}
    assert len(msgspec.json.encode(data)) == MAX_DATA_BYTES
    assert decode_push_request(with_message(data=data)).message.data == data


def test_data_size_counts_utf8_bytes_not_characters():
    # "é" is one character but two bytes once encoded (msgspec does not escape it).
    overhead = len(json.dumps({"k": ""}, separators=(",", ":")))
    chars = (MAX_DATA_BYTES - overhead) // 2 + 1
    with pytest.raises(DecodeError, match=f"data exceeds {MAX_DATA_BYTES} bytes"):
        decode_push_request(with_message(data={"k": "é" * chars}))


# --- push request: every constraint ------------------------------------------------------------

BAD_REQUESTS = [
    pytest.param(request(task_id=...), "missing required field `task_id`", id="task-id-missing"),
    pytest.param(request(app_id=...), "missing required field `app_id`", id="app-id-missing"),
    pytest.param(request(registration_ids=...),
                 "name the devices in exactly one of registration_ids or audience",
                 id="rids-missing"),
    pytest.param(request(registration_ids=[]),
                 "name the devices in exactly one of registration_ids or audience",
                 id="rids-empty"),
    pytest.param(request(audience={"all": True}),
                 "name the devices in exactly one of registration_ids or audience",
                 id="rids-and-audience"),
    pytest.param(request(registration_ids=..., audience={"everyone": True}),
                 r"unknown field `everyone` - at `\$\.audience`", id="audience-unknown-field"),
    pytest.param(request(message=...), "give exactly one of message or template",
                 id="message-missing"),
    pytest.param(request(message=None), "give exactly one of message or template",
                 id="message-null"),
    pytest.param(request(template={"template_id": "t"}),
                 "give exactly one of message or template", id="message-and-template"),
    pytest.param(request(message="Hi"),
                 r"Expected `object \| null`, got `str` - at `\$\.message`", id="message-str"),
    pytest.param(request(task_id="t:1"), r"regex.*\$\.task_id", id="task-id-colon"),
    pytest.param(request(task_id=""), r"regex.*\$\.task_id", id="task-id-empty"),
    pytest.param(request(task_id="t" * 65), r"regex.*\$\.task_id", id="task-id-65"),
    pytest.param(request(app_id="my app"), r"regex.*\$\.app_id", id="app-id-space"),
    pytest.param(request(app_id=1), r"Expected `str`.*\$\.app_id", id="app-id-int"),
    pytest.param(request(registration_ids=["ok", "bad id"]),
                 r"regex.*\$\.registration_ids\[1\]", id="rid-space"),
    pytest.param(request(registration_ids="dev_1"), r"Expected `array`.*\$\.registration_ids",
                 id="rids-string"),
    pytest.param(request(registration_ids=["r"] * (MAX_TARGETS + 1)),
                 rf"length <= {MAX_TARGETS}.*\$\.registration_ids", id="rids-too-many"),
    pytest.param(request(push_flag=2), r"Invalid enum value 2.*\$\.push_flag", id="flag-2"),
    pytest.param(request(push_flag=True), r"\$\.push_flag", id="flag-bool"),
    pytest.param(request(lifetime_s=-1), r">= 0.*\$\.lifetime_s", id="lifetime-negative"),
    pytest.param(request(lifetime_s=MAX_LIFETIME_S + 1),
                 rf"<= {MAX_LIFETIME_S}.*\$\.lifetime_s", id="lifetime-too-long"),
    pytest.param(request(lifetime_s=1.5), r"Expected `int`.*\$\.lifetime_s",
                 id="lifetime-float"),
    # Content fields moved into `message`; at the top level they are unknown.
    pytest.param(request(title="Hi"), "unknown field `title`", id="flat-title"),
    pytest.param(request(kind="data"), "unknown field `kind`", id="flat-kind"),
    pytest.param(request(data={"k": 1}), "unknown field `data`", id="flat-data"),
    pytest.param(request(priority="high"), "unknown field `priority`", id="flat-priority"),
    # Message-level constraints, reported under $.message.
    pytest.param(with_message(kind="other"), r"Invalid enum value 'other'.*\$\.message\.kind",
                 id="kind-other"),
    pytest.param(with_message(title="t" * (MAX_TITLE + 1)),
                 rf"length <= {MAX_TITLE} - at `\$\.message\.title`", id="title-too-long"),
    pytest.param(with_message(body="b" * (MAX_BODY + 1)),
                 rf"length <= {MAX_BODY} - at `\$\.message\.body`", id="body-too-long"),
    pytest.param(with_message(title=5), r"Expected `str`, got `int` - at `\$\.message\.title`",
                 id="title-int"),
    pytest.param(with_message(data={f"k{i}": i for i in range(MAX_DATA_KEYS + 1)}),
                 rf"length <= {MAX_DATA_KEYS} - at `\$\.message\.data`",
                 id="data-too-many-keys"),
    pytest.param(with_message(data={"k": "x" * MAX_DATA_BYTES}),
                 rf"data exceeds {MAX_DATA_BYTES} bytes once encoded - at `\$\.message`",
                 id="data-too-big"),
    pytest.param(with_message(data={"k": {"nested": 1}}),
                 r"got `object` - at `\$\.message\.data\[\.\.\.\]`", id="data-nested-object"),
    pytest.param(with_message(data={"k": [1]}),
                 r"got `array` - at `\$\.message\.data\[\.\.\.\]`", id="data-nested-array"),
    pytest.param(with_message(data=[1]), r"Expected `object`.*\$\.message\.data",
                 id="data-list"),
    pytest.param(with_message(data={"k": INT64_MAX + 1}),
                 rf"<= {INT64_MAX} - at `\$\.message\.data\[\.\.\.\]`", id="data-above-int64"),
    pytest.param(with_message(data={"k": 2**64}),
                 rf"<= {INT64_MAX} - at `\$\.message\.data\[\.\.\.\]`", id="data-above-uint64"),
    pytest.param(with_message(data={"k": 10**30}),
                 rf"<= {INT64_MAX} - at `\$\.message\.data\[\.\.\.\]`", id="data-huge-int"),
    pytest.param(with_message(data={"k": INT64_MIN - 1}),
                 rf">= {INT64_MIN} - at `\$\.message\.data\[\.\.\.\]`", id="data-below-int64"),
    pytest.param(request()[:-2] + b', "data": {"k": 1e400}}}', r"out of range.*\$\.message\.data",
                 id="data-float-overflow"),
    pytest.param(with_message(title=...),
                 r"a notification needs a title or a body - at `\$\.message`",
                 id="notify-no-text"),
    pytest.param(with_message(title="", body=""),
                 r"a notification needs a title or a body - at `\$\.message`",
                 id="notify-empty-text"),
    pytest.param(request(message={}), r"a notification needs a title or a body - at `\$\.message`",
                 id="message-empty"),
    pytest.param(with_message(kind="data", data={}),
                 r"a pass-through message needs data - at `\$\.message`", id="data-kind-empty"),
    pytest.param(with_message(kind="data"), r"a pass-through message needs data - at `\$\.message`",
                 id="data-kind-no-data"),
    pytest.param(with_message(colour="red"), r"unknown field `colour` - at `\$\.message`",
                 id="message-unknown-field"),
    # Not a push request at all.
    pytest.param(b'{"task_id": "t",', "malformed|truncated", id="malformed-json"),
    pytest.param(b"", "truncated", id="empty"),
    pytest.param(b"not json", "malformed", id="not-json"),
    pytest.param(json.dumps([MINIMAL]).encode(), "Expected `object`, got `array`", id="array"),
    pytest.param(b"null", "Expected `object`, got `null`", id="null"),
    pytest.param(b"\xff\xfe{}", "malformed", id="non-utf8"),
    pytest.param(request().replace(b'"Hi"', rb'"\ud800"'), "truncated|surrogate",
                 id="lone-high-surrogate-escape"),
    pytest.param(request().replace(b'"Hi"', rb'"\udc00"'), "truncated|surrogate",
                 id="lone-low-surrogate-escape"),
    pytest.param(request() + b"{}", "trailing characters", id="trailing-data"),
]


@pytest.mark.parametrize(("data", "reason"), BAD_REQUESTS)
def test_bad_push_request_is_rejected(data, reason):
    with pytest.raises(DecodeError, match=f"^invalid push request: .*({reason})"):
        decode_push_request(data)


@pytest.mark.parametrize("data", [
    b'{"\xff": 1}',
    b'{"task_id": "t\xff", "app_id": "a", "registration_ids": ["r"], "message": {"title": "x"}}',
    b'{"task_id": "t", "app_id": "a", "registration_ids": ["r"], "message": {"title": "\xc3"}}',
    b'{"task_id": "t", "app_id": "a", "registration_ids": ["r"], "message": {"\xff": "x"}}',
    b'{"task_id": "t", "app_id": "a", "registration_ids": ["r"],'
    b' "message": {"title": "x", "data": {"\xff": 1}}}',
    b'{"task_id": "t", "app_id": "a", "registration_ids": ["r"],'
    b' "message": {"title": "x", "data": {"k": "\xed\xa0\x80"}}}',
], ids=["key", "id-value", "title-value", "message-key", "data-key", "data-value-surrogate"])
def test_invalid_utf8_inside_a_string_raises_decode_error(data):
    with pytest.raises(DecodeError, match=r"^invalid push request: .*(?i:utf-8)"):
        decode_push_request(data)


@pytest.mark.parametrize(("changes", "path"), [
    ({"task_id": "abc\n"}, r"\$\.task_id"),
    ({"app_id": "abc\n"}, r"\$\.app_id"),
    ({"registration_ids": ["ok", "abc\n"]}, r"\$\.registration_ids\[1\]"),
], ids=["task_id", "app_id", "registration_id"])
def test_id_with_trailing_newline_is_rejected(changes, path):
    with pytest.raises(DecodeError, match=f"regex.*{path}"):
        decode_push_request(request(**changes))


@pytest.mark.parametrize("value", [INT64_MAX + 1, 2**64 - 1, 2**64, INT64_MIN - 1],
                         ids=["above-int64", "uint64-max", "above-uint64", "below-int64"])
def test_data_int_outside_int64_is_rejected(value):
    with pytest.raises(DecodeError, match=r"\$\.message\.data"):
        decode_push_request(with_message(data={"k": value}))


@pytest.mark.parametrize("value", [INT64_MAX, INT64_MIN, 0, -1])
def test_accepted_data_can_be_encoded_into_a_push_frame(value):
    req = decode_push_request(with_message(data={"k": value}))
    frame = frames.Push(mid=req.task_id, task=req.task_id, msg=frames.message_map(req.message))
    assert frames.decode_server(frames.encode(frame)) == frame
    assert frames.message_of(frames.decode_server(frames.encode(frame))) == req.message


def largest_push_frame(char: str, *, with_data: bool = True) -> bytes:
    """The PUSH frame for an accepted request with every text field at its limit in ``char``."""
    overhead = len(json.dumps({"k": ""}, separators=(",", ":")))
    data = {"k": "x" * (MAX_DATA_BYTES - overhead)} if with_data else {}
    req = decode_push_request(request(task_id="t" * 64, message=msg(
        title=char * MAX_TITLE, body=char * MAX_BODY, data=data)))
    return frames.encode(frames.Push(mid=req.task_id, task=req.task_id,
                                      msg=frames.message_map(req.message), ts=2**62))


def test_largest_ascii_request_fits_in_a_client_sized_frame():
    frame = largest_push_frame("x")
    assert len(frame) <= MAX_FRAME_BYTES
    frames.decode_server(frame)


@pytest.mark.parametrize(("char", "with_data"), [("中", True), ("😀", False), ("😀", True)],
                         ids=["cjk-with-data", "emoji-text-only", "emoji-with-data"])
def test_largest_request_fits_in_a_push_frame(char, with_data):
    # Fixed in v1: server frames have their own limit, MAX_SERVER_FRAME_BYTES.
    frame = largest_push_frame(char, with_data=with_data)
    assert MAX_FRAME_BYTES < len(frame) <= MAX_SERVER_FRAME_BYTES
    assert frames.message_of(frames.decode_server(frame)).title == char * MAX_TITLE


@given(data=st.binary(max_size=512))
def test_arbitrary_bytes_only_raise_decode_error(data):
    try:
        decode_push_request(data)
    except DecodeError as err:
        assert err.reason.startswith("invalid push request: ")


# --- internal records --------------------------------------------------------------------------

PUSH_FRAME = frames.encode(frames.Push(mid="m", task="t", msg={"title": "Hi"}))
RICH = Message(title="T", badge_add=3, sound="s", priority="high",
               click=ClickAction(type="deeplink", target="app://x"), image="https://i",
               collapse_id="c")
INTERNAL = [
    pytest.param(decode_app_record, AppRecord("app", "ck", "ss", "ds"), id="app-record"),
    pytest.param(decode_app_record, AppRecord("app", "ck", "ss", "ds", created_ms=1_700_000),
                 id="app-record-created"),
    pytest.param(decode_device_record, DeviceRecord(), id="device-record-empty"),
    pytest.param(decode_device_record,
                 DeviceRecord(platform="android", vendor="fcm",
                              vendor_token="t" * MAX_VENDOR_TOKEN, locale="zh-CN",
                              tz="Asia/Shanghai", app_version="1.2.3", account="u@x.com",
                              created_ms=1_700_000_000_000),
                 id="device-record-full"),
    pytest.param(decode_node_entry,
                 NodeDelivery("app", "task", "msg", PUSH_FRAME, ["r1", "r2"]),
                 id="node-delivery"),
    pytest.param(decode_node_entry,
                 NodeDelivery("app", "task", "msg", PUSH_FRAME, ["r1"], push_flag=1,
                              expires_at_ms=1_700_000_000_000, in_inbox=True),
                 id="node-delivery-full"),
    pytest.param(decode_node_entry, NodeKick("app", "r1", 7), id="node-kick"),
    pytest.param(decode_node_entry, NodeRecall("app", "m1", ["r1", "r2"]), id="node-recall"),
    pytest.param(decode_fallback,
                 Fallback(app_id="a", task_id="t", msg_id="m", frame=PUSH_FRAME,
                          registration_ids=["r1"], push_flag=0, expires_at_ms=0,
                          reason="ack_timeout", node="n1"),
                 id="fallback"),
    pytest.param(decode_vendor_job,
                 VendorJob(app_id="a", task_id="t", msg_id="m",
                           message=Message(title="T", body="B", data={"k": 1, "n": None}),
                           targets=[VendorTarget("r1", "tok1")]),
                 id="vendor-job"),
    pytest.param(decode_vendor_job,
                 VendorJob(app_id="a", task_id="t", msg_id="m",
                           message=Message(kind="data", data={"k": "v"}, push_type="background"),
                           targets=[], expires_at_ms=1_700_000_000_000),
                 id="vendor-job-expiry"),
    pytest.param(decode_vendor_job,
                 VendorJob(app_id="a", task_id="t", msg_id="m", message=RICH,
                           targets=[VendorTarget("r1", "tok1"), VendorTarget("r2", "tok2")]),
                 id="vendor-job-rich-message"),
]


@pytest.mark.parametrize(("decoder", "record"), INTERNAL)
def test_internal_record_round_trips(decoder, record):
    assert decoder(encode_internal(record)) == record


@pytest.mark.parametrize(("record", "tag"), [
    (NodeDelivery("a", "t", "m", b"f", ["r"]), "d"),
    (NodeKick("a", "r", 1), "k"),
    (NodeRecall("a", "m", ["r"]), "r"),
])
def test_node_entries_are_tagged_arrays(record, tag):
    encoded = msgpack.unpackb(encode_internal(record))
    assert encoded[0] == tag
    assert type(decode_node_entry(encode_internal(record))) is type(record)


def test_device_record_fields_are_keyword_only():
    with pytest.raises(TypeError):
        DeviceRecord("android")  # type: ignore[misc]
    record = DeviceRecord(platform="ios", account="u")
    assert (record.platform, record.vendor, record.account, record.created_ms) == (
        "ios", "", "u", 0)


def test_device_record_keeps_its_field_order_on_the_wire():
    # array_like: the stored layout is positional, so new fields may only be appended.
    record = DeviceRecord(platform="p", vendor="v", vendor_token="t", locale="l", tz="z",
                          app_version="1", account="a", created_ms=5)
    assert msgpack.unpackb(encode_internal(record)) == ["p", "v", "t", "l", "z", "1", "a", 5]


def test_shorter_stored_device_record_takes_defaults_for_new_fields():
    # A record written before locale, tz, ... existed still decodes.
    assert decode_device_record(msgpack.packb(["android", "fcm", "tok"])) == DeviceRecord(
        platform="android", vendor="fcm", vendor_token="tok")


def test_fallback_fields_are_keyword_only_and_all_required():
    with pytest.raises(TypeError):
        Fallback(app_id="a", task_id="t", msg_id="m", frame=b"", registration_ids=[],
                 push_flag=0, expires_at_ms=0, reason="closed")  # type: ignore[call-arg]


def test_fallback_frame_reads_back_as_the_push():
    fallback = decode_fallback(encode_internal(Fallback(
        app_id="a", task_id="t", msg_id="m", frame=PUSH_FRAME, registration_ids=["r"],
        push_flag=1, expires_at_ms=5, reason="closed", node="n")))
    push = frames.decode_server(fallback.frame)
    assert isinstance(push, frames.Push)
    assert frames.message_of(push) == Message(title="Hi")


GARBAGE = [
    pytest.param(b"", "truncated", id="empty"),
    pytest.param(b"\xc1", "malformed|invalid", id="reserved-byte"),
    pytest.param(b"\x01", "Expected `array`, got `int`", id="int"),
    pytest.param(msgpack.packb({"a": 1}), "Expected `array`, got `object`", id="map"),
    pytest.param(msgpack.packb(["a", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
                 "Expected|length|Invalid value", id="wrong-array"),
    pytest.param(b"\xdc\x00", "truncated", id="truncated-array-header"),
]
DECODERS = [
    (decode_app_record, "app record"),
    (decode_device_record, "device record"),
    (decode_node_entry, "node inbox entry"),
    (decode_fallback, "fallback"),
    (decode_vendor_job, "vendor job"),
]


@pytest.mark.parametrize(("decoder", "what"), DECODERS)
@pytest.mark.parametrize(("data", "reason"), GARBAGE)
def test_garbage_internal_record_is_rejected(decoder, what, data, reason):
    with pytest.raises(DecodeError, match=f"^invalid {what}: .*({reason})"):
        decoder(data)


@pytest.mark.parametrize(("decoder", "data", "reason"), [
    pytest.param(decode_device_record, msgpack.packb(["p", "v", "t" * (MAX_VENDOR_TOKEN + 1)]),
                 rf"length <= {MAX_VENDOR_TOKEN}", id="device-token-too-long"),
    pytest.param(decode_device_record, msgpack.packb([1]), r"Expected `str`.*\$\[0\]",
                 id="device-platform-int"),
    pytest.param(decode_device_record, msgpack.packb(["p", "v", "t", "l", "z", "1", "a", "5"]),
                 r"Expected `int`.*\$\[7\]", id="device-created-str"),
    pytest.param(decode_app_record, msgpack.packb(["a", "ck", "ss"]), "at least length 4",
                 id="app-short"),
    pytest.param(decode_app_record, msgpack.packb(["a", "ck", "ss", 1]),
                 r"Expected `str`.*\$\[3\]", id="app-device-secret-int"),
    pytest.param(decode_node_entry, msgpack.packb(["d", "a", "t", "m", "frame", ["r"]]),
                 r"Expected `bytes`.*\$\[4\]", id="delivery-frame-str"),
    pytest.param(decode_node_entry, msgpack.packb(["d", "a", "t", "m", b"f"]),
                 "at least length 6", id="delivery-short"),
    pytest.param(decode_node_entry, msgpack.packb(["x", "a", "r", 1]), "Invalid value 'x'",
                 id="unknown-tag"),
    pytest.param(decode_node_entry, msgpack.packb(["a", "t", "m", b"f", ["r"]]),
                 "Invalid value 'a'", id="untagged-v0-delivery"),
    pytest.param(decode_node_entry, msgpack.packb([1, "a", "r", 1]), r"Expected `str`",
                 id="int-tag"),
    pytest.param(decode_node_entry, msgpack.packb(["k", "a", "r", "1"]),
                 r"Expected `int`.*\$\[3\]", id="kick-epoch-str"),
    pytest.param(decode_node_entry, msgpack.packb(["r", "a", "m"]), "at least length 4",
                 id="recall-short"),
    pytest.param(decode_fallback, msgpack.packb(["a", "t", "m", b"f", ["r"], 0, 0, "closed"]),
                 "at least length 9", id="fallback-no-node"),
    pytest.param(decode_fallback,
                 msgpack.packb(["a", "t", "m", b"f", ["r"], "0", 0, "closed", "n"]),
                 r"Expected `int`.*\$\[5\]", id="fallback-flag-str"),
    pytest.param(decode_vendor_job, msgpack.packb(["a", "t", "m", {"title": "T"}, [["r"]]]),
                 r"length 2.*\$\[4\]\[0\]", id="job-target-short"),
    pytest.param(decode_vendor_job,
                 msgpack.packb(["a", "t", "m", {"title": "T", "data": {"k": [1]}}, []]),
                 r"got `array` - at `\$\[3\]\.data\[\.\.\.\]`", id="job-data-nested"),
    pytest.param(decode_vendor_job,
                 msgpack.packb(["a", "t", "m", {"title": "T", "data": {"k": 2**64 - 1}}, []]),
                 rf"<= {INT64_MAX} - at `\$\[3\]\.data\[\.\.\.\]`", id="job-data-uint64"),
    pytest.param(decode_vendor_job, msgpack.packb(["a", "t", "m", {}, []]),
                 r"a notification needs a title or a body - at `\$\[3\]`",
                 id="job-message-no-text"),
    pytest.param(decode_vendor_job,
                 msgpack.packb(["a", "t", "m", {"title": "T", "badge": 1, "badge_add": 1}, []]),
                 r"give badge or badge_add, not both - at `\$\[3\]`", id="job-message-badges"),
    pytest.param(decode_vendor_job, msgpack.packb(["a", "t", "m", {"title": "T", "x": 1}, []]),
                 r"unknown field `x` - at `\$\[3\]`", id="job-message-unknown-field"),
    pytest.param(decode_vendor_job,
                 msgpack.packb(["a", "t", "m", "notify", "T", "B", {}, []]),
                 r"Expected `object`, got `str` - at `\$\[3\]`", id="job-old-flat-layout"),
])
def test_wrong_shape_internal_record_is_rejected(decoder, data, reason):
    with pytest.raises(DecodeError, match=reason):
        decoder(data)


def raw(value) -> bytes:
    """msgpack of ``value`` where ``bytes`` are written as str (so they may be invalid UTF-8)."""
    return msgpack.packb(value, use_bin_type=False)


@pytest.mark.parametrize(("decoder", "what", "data"), [
    pytest.param(decode_device_record, "device record", b"\x93\xa1\xff\xa0\xa0",
                 id="device-platform"),
    pytest.param(decode_app_record, "app record", raw(["a", "ck", "ss", b"\xff"]),
                 id="app-secret"),
    pytest.param(decode_node_entry, "node inbox entry",
                 b"\x96\xa1d\xa1a\xa1t\xa1m\xc4\x00\x91\xa1\xff", id="delivery-rid"),
    pytest.param(decode_node_entry, "node inbox entry", raw([b"\xff", "a", "r", 1]),
                 id="tag"),
    pytest.param(decode_fallback, "fallback",
                 msgpack.packb(["a", "t", "m", b"", [], 0, 0, "ZZ", "n"]).replace(
                     b"\xa2ZZ", b"\xa2\xc3Z"), id="fallback-reason"),
    pytest.param(decode_vendor_job, "vendor job",
                 raw([b"a\xc3", "t", "m", {"title": "T"}, []]), id="job-app-id"),
    pytest.param(decode_vendor_job, "vendor job",
                 raw(["a", "t", "m", {"title": b"\xff"}, []]), id="job-title"),
    pytest.param(decode_vendor_job, "vendor job",
                 raw(["a", "t", "m", {b"\xff": "T"}, []]), id="job-message-key"),
    pytest.param(decode_vendor_job, "vendor job",
                 raw(["a", "t", "m", {"title": "T", "data": {b"\xff": 1}}, []]),
                 id="job-data-key"),
    pytest.param(decode_vendor_job, "vendor job",
                 raw(["a", "t", "m", {"title": "T"}, [["r", b"\xed\xa0\x80"]]]),
                 id="job-token-surrogate"),
])
def test_internal_record_with_invalid_utf8_raises_decode_error(decoder, what, data):
    with pytest.raises(DecodeError, match=f"^invalid {what}: .*(?i:utf-8)"):
        decoder(data)


@pytest.mark.parametrize(("decoder", "what"), DECODERS)
@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=256))
def test_arbitrary_bytes_only_raise_decode_error_for_internal_records(decoder, what, data):
    try:
        decoder(data)
    except DecodeError as err:
        assert err.reason.startswith(f"invalid {what}: ")
