"""Chat and call messages, ``sender`` and ``environment``: defaults, refusals, the PUSH frame."""

from __future__ import annotations

import json

import msgspec
import pytest

from proto import frames
from proto.envelopes import PushContent, decode_push_request, encode_push_request
from proto.errors import DecodeError
from proto.limits import MAX_CALL_LIFETIME_S
from proto.message import ClickAction, Message

CHAT = {"kind": "chat", "title": "Bob", "body": "lunch?", "conversation": "group:42",
        "sender": "bob@example.com"}
ENVELOPE = {"task_id": "t1", "app_id": "app1", "registration_ids": ["r1"]}


def _request(message: dict[str, object], **fields: object) -> bytes:
    return json.dumps({**ENVELOPE, "message": message, **fields}).encode()


# --- chat --------------------------------------------------------------------------------------


def test_chat_gets_its_defaults():
    m = msgspec.convert(CHAT, Message)
    assert (m.badge, m.badge_add, m.collapse_id, m.category) == (None, 1, "group:42", "IM")
    assert m.shows and m.click == ClickAction()
    assert m.vendor_data() == {"conversation": "group:42", "sender": "bob@example.com"}


def test_chat_keeps_what_it_names():
    m = Message(**CHAT, badge=7, collapse_id="c", category="SOCIAL", data={"k": 1})
    assert (m.badge, m.badge_add, m.collapse_id, m.category) == (7, None, "c", "SOCIAL")
    assert Message(**CHAT, badge_add=3).badge_add == 3
    assert m.vendor_data() == {"k": 1, "conversation": "group:42", "sender": "bob@example.com"}


def test_chat_defaults_survive_a_push_request_and_a_push_frame():
    decoded = decode_push_request(_request(CHAT))
    assert decode_push_request(encode_push_request(decoded)) == decoded
    message = decoded.message
    assert message is not None
    push = frames.decode_server(frames.encode(
        frames.Push(mid="m", task="t", msg=frames.message_map(message))))
    # A v1 client that knows no chat sees a notification; ``scene`` says what it is.
    assert (push.msg["kind"], push.msg["scene"], push.msg["conversation"]) == (
        "notify", "chat", "group:42")
    assert push.msg["badge_add"] == 1 and push.msg["collapse_id"] == "group:42"
    assert frames.message_of(push) == message


@pytest.mark.parametrize(("fields", "reason"), [
    ({"conversation": ""}, "needs a conversation and a sender"),
    ({"sender": ""}, "needs a conversation and a sender"),
    ({"conversation": "has space"}, "conversation must be"),
    ({"conversation": "c" * 65}, r"length <= 64 - at `\$.message.conversation`"),
    ({"data": {"conversation": "x"}}, "reserved"),
    ({"data": {"sender": "x"}}, "reserved"),
    ({"title": "", "body": ""}, "needs a title or a body"),
])
def test_bad_chat_is_refused(fields, reason):
    with pytest.raises(DecodeError, match=reason):
        decode_push_request(_request({**CHAT, **fields}))


def test_conversation_belongs_to_chats_only():
    with pytest.raises(DecodeError, match="only a chat message names a conversation"):
        decode_push_request(_request({"title": "t", "conversation": "c1"}))


# --- call --------------------------------------------------------------------------------------


def test_call_is_a_high_priority_voip_push():
    m = Message(kind="call", title="Alice calling", priority="normal")
    assert (m.push_type, m.priority, m.category, m.shows) == ("voip", "high", "VOIP", True)
    assert Message(kind="call", title="x", category="IM").category == "IM"
    push = frames.decode_server(frames.encode(
        frames.Push(mid="m", task="t", msg=frames.message_map(m))))
    assert (push.msg["kind"], push.msg["scene"], push.msg["push_type"]) == (
        "notify", "call", "voip")
    assert frames.message_of(push) == m


def test_call_lifetime_is_at_most_a_minute():
    call = {"kind": "call", "title": "ring"}
    ok = decode_push_request(_request(call, lifetime_s=MAX_CALL_LIFETIME_S))
    assert ok.lifetime_s == MAX_CALL_LIFETIME_S
    with pytest.raises(DecodeError, match="a call's lifetime_s is at most 60 s"):
        decode_push_request(_request(call, lifetime_s=MAX_CALL_LIFETIME_S + 1))
    with pytest.raises(msgspec.ValidationError, match="at most 60 s"):
        msgspec.convert({"message": call, "registration_ids": ["r1"], "lifetime_s": 3600},
                        PushContent)
    # Other kinds keep their week.
    assert decode_push_request(_request({"title": "t"}, lifetime_s=3600)).lifetime_s == 3600


def test_call_cannot_be_silent():
    with pytest.raises(DecodeError, match="voip, not background"):
        decode_push_request(_request({"kind": "call", "title": "t",
                                      "push_type": "background"}))


def test_call_needs_text():
    with pytest.raises(DecodeError, match="needs a title or a body"):
        decode_push_request(_request({"kind": "call", "data": {"room": "r1"}}))


# --- sender, environment, kinds ----------------------------------------------------------------


@pytest.mark.parametrize("sender", ["alice", "a.b@example.com", "+4917012345", "u_1-2"])
def test_sender_is_an_account_id(sender):
    m = decode_push_request(_request({"title": "t", "sender": sender})).message
    assert m is not None and m.sender == sender and m.vendor_data() == {"sender": sender}


@pytest.mark.parametrize("sender", ["has space", "x" * 65, "ümlaut", "a/b"])
def test_bad_sender_is_refused(sender):
    with pytest.raises(DecodeError, match="sender"):
        decode_push_request(_request({"title": "t", "sender": sender}))


@pytest.mark.parametrize("environment", ["production", "development"])
def test_environment_is_taken(environment):
    m = decode_push_request(_request({"title": "t", "environment": environment})).message
    assert m is not None and m.environment == environment


@pytest.mark.parametrize("environment", ["sandbox", "prod", "PRODUCTION", 1])
def test_bad_environment_is_refused(environment):
    with pytest.raises(DecodeError, match="environment"):
        decode_push_request(_request({"title": "t", "environment": environment}))


def test_unknown_kind_is_refused():
    with pytest.raises(DecodeError, match="kind"):
        decode_push_request(_request({"kind": "voip", "title": "t"}))


def test_unknown_scene_is_a_plain_notification():
    push = frames.decode_server(frames.encode(frames.Push(
        mid="m", task="t", msg={"kind": "notify", "title": "t", "scene": "future"})))
    assert frames.message_of(push) == Message(title="t")
