"""The push content model (``Message``, ``ClickAction``), decoded as a backend sends it: inside a
push request. Every field's bounds, the cross-field rules of ``__post_init__``, and round trips."""

from __future__ import annotations

import json

import msgspec
import pytest

from proto.envelopes import (
    PushRequest,
    VendorJob,
    VendorTarget,
    decode_push_request,
    decode_vendor_job,
    encode_internal,
    encode_push_request,
)
from proto.errors import DecodeError
from proto.limits import MAX_TITLE
from proto.message import ClickAction, Localized, Message, fallback_chain, localize

ENVELOPE = {"task_id": "t1", "app_id": "app", "registration_ids": ["r1"]}


def wrap(message: object) -> bytes:
    """A minimal push request carrying ``message`` (any JSON value)."""
    return json.dumps({**ENVELOPE, "message": message}).encode()


def decode(**fields) -> Message:
    """Decode a message with ``{"title": "Hi"}`` plus ``fields`` (``...`` removes a field)."""
    body = {k: v for k, v in {"title": "Hi", **fields}.items() if v is not ...}
    return decode_push_request(wrap(body)).message


def rejected(reason: str, **fields) -> None:
    """Assert that the message with ``fields`` is refused with a reason matching ``reason``."""
    with pytest.raises(DecodeError, match=f"^invalid push request: .*{reason}"):
        decode(**fields)


FULL = Message(
    kind="notify", title="Title", body="Body", data={"s": "x", "i": 1, "f": 0.5, "b": True,
                                                     "n": None},
    badge=12, sound="chime.caf", click=ClickAction(type="url", target="https://example.com/a"),
    small_icon="ic_small", large_icon="https://example.com/l.png",
    image="https://example.com/i.png", category="IM", channel_id="chat",
    collapse_id="thread-1", priority="high", push_type="voip",
    locales={"de": Localized(title="Titel", body="Text")}, sender="alice@example.com",
    environment="development")
ALL_FIELDS = {"kind", "title", "body", "data", "badge", "badge_add", "sound", "click",
              "small_icon", "large_icon", "image", "category", "channel_id", "collapse_id",
              "priority", "push_type", "locales", "sender", "conversation", "environment"}


# --- good input --------------------------------------------------------------------------------


def test_message_fields_are_the_documented_ones():
    assert set(Message.__struct_fields__) == ALL_FIELDS
    assert set(ClickAction.__struct_fields__) == {"type", "target"}


def test_minimal_message_has_the_defaults():
    assert decode() == Message(title="Hi")
    m = decode()
    assert (m.kind, m.body, m.data, m.badge, m.badge_add, m.sound, m.click, m.small_icon,
            m.large_icon, m.image, m.category, m.channel_id, m.collapse_id, m.priority,
            m.push_type) == ("notify", "", {}, None, None, "", ClickAction(type="app", target=""),
                             "", "", "", "", "", "", "normal", "alert")


def test_full_message_round_trips_through_a_push_request():
    req = PushRequest(**ENVELOPE, message=FULL)
    encoded = encode_push_request(req)
    # conversation: only chat messages have one (tests/proto/test_message_kinds.py).
    assert set(json.loads(encoded)["message"]) == ALL_FIELDS - {"kind", "badge_add",
                                                                 "conversation"}
    assert decode_push_request(encoded) == req


def test_full_message_decodes_from_json():
    body = {"kind": "notify", "title": "Title", "body": "Body",
            "data": {"s": "x", "i": 1, "f": 0.5, "b": True, "n": None}, "badge": 12,
            "sound": "chime.caf", "click": {"type": "url", "target": "https://example.com/a"},
            "small_icon": "ic_small", "large_icon": "https://example.com/l.png",
            "image": "https://example.com/i.png", "category": "IM", "channel_id": "chat",
            "collapse_id": "thread-1", "priority": "high", "push_type": "voip",
            "locales": {"de": {"title": "Titel", "body": "Text"}},
            "sender": "alice@example.com", "environment": "development"}
    assert set(body) == ALL_FIELDS - {"badge_add", "conversation"}
    assert decode_push_request(wrap(body)).message == FULL


@pytest.mark.parametrize("message", [
    FULL,
    Message(kind="data", data={"k": "v"}, badge_add=5, push_type="background",
            click=ClickAction(type="intent", target="intent://x#Intent;end")),
    Message(body="b", click=ClickAction(type="deeplink", target="app://open")),
], ids=["full", "data-badge-add", "deeplink"])
def test_message_round_trips(message):
    req = PushRequest(**ENVELOPE, message=message)
    assert decode_push_request(encode_push_request(req)).message == message
    job = VendorJob(app_id="a", task_id="t", msg_id="m", message=message,
                    targets=[VendorTarget("r", "tok")])
    assert decode_vendor_job(encode_internal(job)).message == message


@pytest.mark.parametrize("fields", [
    pytest.param({"badge": 0}, id="badge-0"),
    pytest.param({"badge": 99_999}, id="badge-max"),
    pytest.param({"badge": None}, id="badge-null"),
    pytest.param({"badge_add": 1}, id="badge-add-1"),
    pytest.param({"badge_add": 99}, id="badge-add-99"),
    pytest.param({"badge_add": None, "badge": 3}, id="badge-add-null-with-badge"),
    pytest.param({"click": {}}, id="click-empty-is-app"),
    pytest.param({"click": {"type": "app"}}, id="click-app-no-target"),
    pytest.param({"click": {"type": "url", "target": "u" * 1024}}, id="click-target-1024"),
    pytest.param({"collapse_id": "c" * 64}, id="collapse-id-64"),
    pytest.param({"image": "i" * 1024}, id="image-1024"),
    pytest.param({"large_icon": "l" * 1024}, id="large-icon-1024"),
    pytest.param({"sound": "s" * 256}, id="sound-256"),
    pytest.param({"small_icon": "s" * 256}, id="small-icon-256"),
    pytest.param({"category": "c" * 256}, id="category-256"),
    pytest.param({"channel_id": "c" * 256}, id="channel-id-256"),
    pytest.param({"priority": "normal"}, id="priority-normal"),
    pytest.param({"priority": "high"}, id="priority-high"),
    pytest.param({"push_type": "alert"}, id="push-type-alert"),
    pytest.param({"push_type": "background"}, id="push-type-background"),
    pytest.param({"push_type": "voip"}, id="push-type-voip"),
])
def test_boundary_message_is_accepted(fields):
    m = decode(**fields)
    for name, value in fields.items():
        if name != "click":
            assert getattr(m, name) == value


@pytest.mark.parametrize("kind", ["url", "intent", "deeplink"])
def test_click_with_target_decodes(kind):
    assert decode(click={"type": kind, "target": "x"}).click == ClickAction(type=kind, target="x")


# --- rejections --------------------------------------------------------------------------------


def test_badge_and_badge_add_together_are_rejected():
    rejected(r"give badge or badge_add, not both - at `\$\.message`$", badge=1, badge_add=1)


def test_badge_zero_and_badge_add_together_are_rejected():
    rejected("give badge or badge_add, not both", badge=0, badge_add=1)


@pytest.mark.parametrize(("value", "reason"), [
    (-1, r">= 0"),
    (100_000, r"<= 99999"),
    (1.5, r"Expected `int \| null`, got `float`"),
    (True, r"Expected `int \| null`, got `bool`"),
    ("1", r"Expected `int \| null`, got `str`"),
], ids=["negative", "over-99999", "float", "bool", "str"])
def test_bad_badge_is_rejected(value, reason):
    rejected(rf"{reason} - at `\$\.message\.badge`", badge=value)


@pytest.mark.parametrize(("value", "reason"), [
    (0, r">= 1"),
    (100, r"<= 99"),
    (-1, r">= 1"),
    (True, r"got `bool`"),
], ids=["zero", "100", "negative", "bool"])
def test_bad_badge_add_is_rejected(value, reason):
    rejected(rf"{reason} - at `\$\.message\.badge_add`", badge_add=value)


@pytest.mark.parametrize("kind", ["url", "intent", "deeplink"])
@pytest.mark.parametrize("click", [{}, {"target": ""}], ids=["target-absent", "target-empty"])
def test_click_without_target_is_rejected(kind, click):
    rejected(rf"click action '{kind}' needs a target - at `\$\.message\.click`",
             click={"type": kind, **click})


@pytest.mark.parametrize(("click", "reason"), [
    ({"type": "web", "target": "x"}, r"Invalid enum value 'web' - at `\$\.message\.click\.type`"),
    ({"type": "URL", "target": "x"}, r"Invalid enum value 'URL' - at `\$\.message\.click\.type`"),
    ({"type": "", "target": "x"}, r"Invalid enum value '' - at `\$\.message\.click\.type`"),
    ({"type": 1}, r"Expected `str`, got `int` - at `\$\.message\.click\.type`"),
    ({"type": "url", "target": "u" * 1025},
     r"length <= 1024 - at `\$\.message\.click\.target`"),
    ({"type": "url", "url": "x"}, r"unknown field `url` - at `\$\.message\.click`"),
    ("https://x", r"Expected `object`, got `str` - at `\$\.message\.click`"),
    (None, r"Expected `object`, got `null` - at `\$\.message\.click`"),
], ids=["unknown-type", "type-wrong-case", "type-empty", "type-int", "target-too-long",
        "unknown-field", "string", "null"])
def test_bad_click_is_rejected(click, reason):
    rejected(reason, click=click)


@pytest.mark.parametrize("name", ["url", "Title", "ttl", "badgeAdd", "sound_name"])
def test_unknown_field_inside_message_is_rejected(name):
    rejected(rf"unknown field `{name}` - at `\$\.message`$", **{name: "x"})


@pytest.mark.parametrize("value", ["urgent", "HIGH", "", "low", 10, None])
def test_bad_priority_is_rejected(value):
    rejected(r"\$\.message\.priority", priority=value)


@pytest.mark.parametrize("value", ["silent", "Alert", "", "complication", 1, None])
def test_bad_push_type_is_rejected(value):
    rejected(r"\$\.message\.push_type", push_type=value)


@pytest.mark.parametrize(("name", "limit"), [
    ("collapse_id", 64),
    ("image", 1024),
    ("large_icon", 1024),
    ("sound", 256),
    ("small_icon", 256),
    ("category", 256),
    ("channel_id", 256),
])
def test_string_field_over_its_limit_is_rejected(name, limit):
    rejected(rf"length <= {limit} - at `\$\.message\.{name}`", **{name: "x" * (limit + 1)})


@pytest.mark.parametrize("name", ["sound", "small_icon", "large_icon", "image", "category",
                                  "channel_id", "collapse_id"])
def test_string_field_of_wrong_type_is_rejected(name):
    rejected(rf"Expected `str`, got `int` - at `\$\.message\.{name}`", **{name: 1})


def test_notification_with_only_data_is_rejected():
    rejected(r"a notification needs a title or a body - at `\$\.message`$",
             title=..., data={"k": "v"})


@pytest.mark.parametrize("message", [[], "Hi", 1], ids=["array", "str", "int"])
def test_message_that_is_not_an_object_is_rejected(message):
    with pytest.raises(DecodeError,
                       match=r"Expected `object \| null`, got `.*` - at `\$\.message`$"):
        decode_push_request(wrap(message))


def test_a_null_message_is_no_message():
    # A push without a message must name a template instead (``proto.templates``).
    with pytest.raises(DecodeError, match="give exactly one of message or template"):
        decode_push_request(wrap(None))


# --- built in Python: the cross-field rules also hold ------------------------------------------


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({}, "a notification needs a title or a body"),
    ({"kind": "data"}, "a pass-through message needs data"),
    ({"title": "t", "badge": 1, "badge_add": 1}, "give badge or badge_add, not both"),
    ({"title": "t", "data": {"k": "x" * 5000}}, "data exceeds 4096 bytes once encoded"),
], ids=["no-text", "data-no-data", "both-badges", "data-too-big"])
def test_message_constructor_enforces_cross_field_rules(kwargs, reason):
    with pytest.raises(ValueError, match=reason):
        Message(**kwargs)


@pytest.mark.parametrize("kind", ["url", "intent", "deeplink"])
def test_click_action_constructor_needs_a_target(kind):
    with pytest.raises(ValueError, match=f"click action '{kind}' needs a target"):
        ClickAction(type=kind)


def test_message_is_frozen():
    with pytest.raises(AttributeError):
        FULL.title = "other"  # type: ignore[misc]


# --- languages ---------------------------------------------------------------------------------

LOCALIZED = Message(title="Hello", body="default", locales={
    "zh-Hant": Localized(title="你好"), "zh": Localized(title="你好", body="简体"),
    "en_us": Localized(title="Hi"), "pt-BR": Localized(body="Olá")})


@pytest.mark.parametrize(("locale", "tag", "title", "body"), [
    pytest.param("zh-Hant-TW", "zh-Hant", "你好", "default", id="region-to-script"),
    pytest.param("zh_hant_hk", "zh-Hant", "你好", "default", id="posix-spelling"),
    pytest.param("zh-Hans-CN", "zh", "你好", "简体", id="script-to-language"),
    pytest.param("zh", "zh", "你好", "简体", id="language"),
    pytest.param("en-US", "en-US", "Hi", "default", id="exact-tag-other-spelling"),
    pytest.param("en-GB", "", "Hello", "default", id="sibling-region-is-not-a-match"),
    pytest.param("pt-BR", "pt-BR", "Hello", "Olá", id="empty-field-keeps-the-default"),
    pytest.param("fr", "", "Hello", "default", id="no-match-default"),
    pytest.param("", "", "Hello", "default", id="no-locale-default"),
])
def test_each_device_gets_its_locales_content_through_the_chain(locale, tag, title, body):
    chosen, message = localize(LOCALIZED, locale)
    assert (chosen, message.title, message.body, message.locales) == (tag, title, body, {})


def test_the_fallback_chain_drops_one_subtag_at_a_time():
    assert fallback_chain("zh-Hant-TW") == ["zh-Hant-TW", "zh-Hant", "zh"]
    assert fallback_chain("en_us") == ["en-US", "en"]
    assert fallback_chain("  ") == []


def test_a_message_without_languages_is_left_as_it_is():
    plain = Message(title="x")
    assert localize(plain, "de-DE") == ("", plain)


@pytest.mark.parametrize("locales", [
    {"not a tag": {"title": "x"}}, {"x": {"title": "x"}}, {"en": {"colour": "red"}},
    {"en": {"title": "t" * (MAX_TITLE + 1)}},
    {f"{chr(97 + i // 26)}{chr(97 + i % 26)}": {"title": "x"} for i in range(51)},
], ids=["space", "one-letter", "unknown-field", "title-too-long", "51-languages"])
def test_bad_languages_are_refused(locales):
    data = msgspec.json.encode({"title": "x", "locales": locales})
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(data, type=Message)
