"""Write the device protocol's test vectors: ``python -m proto.vectors.generate``.

The output is deterministic (no clock, no randomness), so ``tests/proto/test_vectors.py`` can
check that the committed files are exactly what this script writes. Every vector is checked
against ``proto.frames`` before it is written: a valid frame must decode to itself and re-encode
to the same bytes, an invalid one must be refused with its reason.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack

from proto import tokens
from proto.errors import DecodeError
from proto.frames import (
    Ack,
    Bind,
    Bound,
    Bye,
    Click,
    ClientFrame,
    Hello,
    Ping,
    Pong,
    Push,
    Recall,
    Register,
    Registered,
    ServerFrame,
    Welcome,
    decode_client,
    decode_server,
    encode,
    message_map,
)
from proto.limits import MAX_BODY, MAX_DATA_BYTES, MAX_FRAME_BYTES, MAX_TITLE, MAX_VENDOR_TOKEN
from proto.message import ClickAction, Message

HERE = Path(__file__).resolve().parent
CLIENT_TYPES = (Register, Hello, Ack, Click, Bind, Ping)

APP = "demo.app"
RID = "3f2a9c4e5b6d7a8f9e0d1c2b3a495867"
EXP = 1_767_225_600
#: A real token: it verifies under the first case of ``tokens.json``.
TOKEN = tokens.sign(b"s3cr3t", APP, RID, EXP)
FCM_TOKEN = "dXNlcl9mY21fdG9rZW4:APA91bH" + "x" * 120
FULL = Message(
    kind="notify", title="Order shipped 📦", body="Your parcel is on its way.",
    data={"order": "A-1001", "count": 3, "total": 19.99, "gift": False, "note": None},
    badge=5, sound="chime.caf", click=ClickAction(type="deeplink", target="demo://orders/A-1001"),
    small_icon="ic_stat_box", large_icon="https://cdn.example.com/l.png",
    image="https://cdn.example.com/i.jpg", category="IM", channel_id="orders",
    collapse_id="order-A-1001", priority="high", push_type="alert")


def largest_message() -> Message:
    """Every text field at its limit in 4-byte UTF-8 characters, data at its byte limit."""
    char = "😀"
    return Message(
        title=char * MAX_TITLE, body=char * MAX_BODY,
        data={"k": char * ((MAX_DATA_BYTES - len('{"k":""}')) // 4)}, badge_add=99,
        sound=char * 256, click=ClickAction(type="url", target=char * 1024),
        small_icon=char * 256, large_icon=char * 1024, image=char * 1024, category=char * 256,
        channel_id=char * 256, collapse_id=char * 64, priority="high", push_type="voip")


VALID: list[tuple[str, ClientFrame | ServerFrame]] = [
    ("register-minimal", Register(app=APP, key="ck_4f9a2b")),
    ("register-first-install", Register(app=APP, key="ck_4f9a2b", platform="android")),
    ("register-with-device-fields", Register(
        app=APP, key="ck_4f9a2b", platform="android", vendor="fcm", vtoken=FCM_TOKEN,
        locale="zh-Hans-CN", tz="Asia/Shanghai", appver="2.4.0")),
    ("register-renew", Register(app=APP, key="ck_4f9a2b", platform="ios", rid=RID,
                                token=TOKEN)),
    ("register-unicode-fields", Register(app=APP, key="clé-🔑", platform="harmonyos",
                                         locale="sr-Cyrl-RS", tz="America/Argentina/Rio_Gallegos",
                                         appver="3.0.0-β")),
    ("register-longest-vtoken", Register(app=APP, key="k", vendor="apns",
                                         vtoken="f" * MAX_VENDOR_TOKEN, rid="r" * 64,
                                         token=TOKEN)),
    ("hello-minimal", Hello(app=APP, rid=RID, token=TOKEN)),
    ("hello-device-fields", Hello(app=APP, rid=RID, token=TOKEN, vendor="huawei",
                                  vtoken="IQAAAACy0kYhAABMzkhg2bc", locale="de-DE",
                                  tz="Europe/Berlin", appver="2.5.1")),
    ("hello-locale-only", Hello(app=APP, rid=RID, token=TOKEN, locale="en-US")),
    ("hello-other-version", Hello(app=APP, rid=RID, token=TOKEN, v=2)),
    ("ack", Ack(mid="task-20240101-0001")),
    ("click", Click(mid="task-20240101-0001")),
    ("bind-email", Bind(account="alice+news@example.com")),
    ("bind-phone", Bind(account="+8613800138000")),
    ("bind-empty-unbinds", Bind()),
    ("ping", Ping()),
    ("registered", Registered(rid=RID, token=TOKEN, exp=EXP)),
    ("welcome-default-policy", Welcome(epoch=1, hb=10, node="gw-1")),
    ("welcome-full", Welcome(epoch=42, hb=25, node="gw-eu-3.example", rc_base_ms=500,
                             rc_max_ms=30_000)),
    ("welcome-epoch-uint8", Welcome(epoch=200, hb=10, node="gw-1")),
    ("welcome-epoch-uint16", Welcome(epoch=40_000, hb=10, node="gw-1")),
    ("welcome-epoch-uint32", Welcome(epoch=3_000_000_000, hb=10, node="gw-1")),
    ("welcome-epoch-uint64", Welcome(epoch=2**53 - 1, hb=10, node="gw-1")),
    ("push-title-only", Push(mid="t1", task="t1", msg={"title": "Hi"})),
    ("push-unicode", Push(mid="t2", task="t2", msg={"title": "你好 👋", "body": "مرحبا · Grüße"},
                          ts=1_717_171_717_171)),
    ("push-data-message", Push(mid="t3", task="t3", ts=1_717_171_717_171, msg=message_map(
        Message(kind="data", data={"s": "x", "i": -7, "big": 2**53 - 1, "f": 0.25, "b": True,
                                   "n": None}, priority="high", push_type="background")))),
    ("push-full-message", Push(mid="order-A-1001", task="order-A-1001", ts=1_717_171_717_171,
                               msg=message_map(FULL))),
    ("push-largest", Push(mid="m" * 64, task="t" * 64, ts=2**53 - 1,
                          msg=message_map(largest_message()))),
    ("pong", Pong()),
    ("bye-shutdown", Bye(reason="shutdown", retry_ms=2500)),
    ("bye-replaced", Bye(reason="replaced")),
    ("bye-reason-str16", Bye(reason="😀" * 64)),
    ("bound", Bound(account="alice+news@example.com")),
    ("bound-empty", Bound()),
    ("recall", Recall(mid="order-A-1001")),
]


def pack(**fields: Any) -> bytes:
    return msgpack.packb(fields)


REG = {"op": 8, "app": APP, "key": "ck"}
HEL = {"op": 1, "app": APP, "rid": RID, "token": TOKEN}
PSH = {"op": 3, "mid": "m1", "task": "t1", "msg": {"title": "Hi"}}
WEL = {"op": 2, "epoch": 1, "hb": 10, "node": "gw-1"}


def mutate(base: dict[str, Any], **changes: Any) -> bytes:
    """``base`` with ``changes``; a change to ``...`` removes the field."""
    body = {**base, **changes}
    return msgpack.packb({k: v for k, v in body.items() if v is not ...})


def oversized_ping() -> bytes:
    for pad in range(MAX_FRAME_BYTES, 0, -1):
        data = pack(op=5, pad="x" * pad)
        if len(data) == MAX_FRAME_BYTES + 1:
            return data
    raise AssertionError("no padding gives the size")


INVALID: list[tuple[str, str, bytes, str]] = [
    # Not a frame at all.
    ("empty", "client", b"", "not a msgpack frame"),
    ("reserved-byte", "client", b"\xc1", "not a msgpack frame"),
    ("two-objects", "client", pack(op=5) + b"\xc0", "not a msgpack frame"),
    ("truncated", "client", pack(op=4, mid="m1")[:-1], "not a msgpack frame"),
    ("invalid-utf8", "client", b"\x82\xa2op\x04\xa3mid\xa2\xc3\x28", "not a msgpack frame"),
    ("int-map-key", "client", msgpack.packb({"op": 5, 1: 2}), "not a msgpack frame"),
    ("array", "client", msgpack.packb([4, "m1"]), "a frame is a msgpack map"),
    ("string", "server", msgpack.packb("PONG"), "a frame is a msgpack map"),
    ("no-op", "client", pack(mid="m1"), "field 'op' must be an integer"),
    ("op-string", "client", pack(op="5"), "field 'op' must be an integer"),
    ("op-float", "server", pack(op=6.0), "field 'op' must be an integer"),
    ("op-bool", "client", pack(op=True), "field 'op' must be an integer"),
    ("unknown-op-client", "client", pack(op=99), "unknown op 99"),
    ("unknown-op-server", "server", pack(op=99), "unknown op 99"),
    ("server-op-from-client", "client", pack(op=6), "op 6 is not sent by clients"),
    ("client-op-from-server", "server", pack(op=5), "op 5 is not sent by servers"),
    ("client-frame-too-big", "client", oversized_ping(),
     f"frame of {MAX_FRAME_BYTES + 1} bytes exceeds {MAX_FRAME_BYTES}"),
    # REGISTER
    ("register-app-missing", "client", mutate(REG, app=...), "field 'app'"),
    ("register-app-space", "client", mutate(REG, app="demo app"), "field 'app'"),
    ("register-app-65", "client", mutate(REG, app="a" * 65), "field 'app'"),
    ("register-app-non-ascii", "client", mutate(REG, app="démo"), "field 'app'"),
    ("register-key-missing", "client", mutate(REG, key=...), "field 'key' must be a string"),
    ("register-key-129", "client", mutate(REG, key="k" * 129),
     "field 'key' is longer than 128 characters"),
    ("register-platform-int", "client", mutate(REG, platform=1),
     "field 'platform' must be a string"),
    ("register-platform-33", "client", mutate(REG, platform="p" * 33),
     "field 'platform' is longer than 32 characters"),
    ("register-vendor-without-vtoken", "client", mutate(REG, vendor="fcm"),
     "fields 'vendor' and 'vtoken' go together"),
    ("register-vtoken-without-vendor", "client", mutate(REG, vtoken="tok"),
     "fields 'vendor' and 'vtoken' go together"),
    ("register-vendor-empty", "client", mutate(REG, vendor="", vtoken="tok"), "field 'vendor'"),
    ("register-vtoken-513", "client", mutate(REG, vendor="fcm", vtoken="t" * 513),
     "field 'vtoken' is longer than 512 characters"),
    ("register-locale-36", "client", mutate(REG, locale="l" * 36),
     "field 'locale' is longer than 35 characters"),
    ("register-tz-65", "client", mutate(REG, tz="z" * 65),
     "field 'tz' is longer than 64 characters"),
    ("register-appver-33", "client", mutate(REG, appver="1" * 33),
     "field 'appver' is longer than 32 characters"),
    ("register-appver-nil", "client", mutate(REG, appver=None),
     "field 'appver' must be a string"),
    ("register-rid-empty", "client", mutate(REG, rid=""), "field 'rid'"),
    ("register-rid-without-token", "client", mutate(REG, rid=RID),
     "fields 'rid' and 'token' go together"),
    ("register-rid-colon", "client", mutate(REG, rid="a:b"), "field 'rid'"),
    # HELLO
    ("hello-rid-missing", "client", mutate(HEL, rid=...), "field 'rid'"),
    ("hello-rid-slash", "client", mutate(HEL, rid="a/b"), "field 'rid'"),
    ("hello-token-missing", "client", mutate(HEL, token=...), "field 'token' must be a string"),
    ("hello-token-bin", "client", mutate(HEL, token=b"1.sig"), "field 'token' must be a string"),
    ("hello-token-513", "client", mutate(HEL, token="t" * 513),
     "field 'token' is longer than 512 characters"),
    ("hello-v-negative", "client", mutate(HEL, v=-1), "field 'v' must be a non-negative integer"),
    ("hello-v-string", "client", mutate(HEL, v="1"), "field 'v' must be a non-negative integer"),
    ("hello-vtoken-without-vendor", "client", mutate(HEL, vtoken="tok"),
     "fields 'vendor' and 'vtoken' go together"),
    # ACK, CLICK, BIND
    ("ack-mid-missing", "client", pack(op=4), "field 'mid'"),
    ("ack-mid-empty", "client", pack(op=4, mid=""), "field 'mid'"),
    ("ack-mid-65", "client", pack(op=4, mid="m" * 65), "field 'mid'"),
    ("ack-mid-newline", "client", pack(op=4, mid="m1\n"), "field 'mid'"),
    ("click-mid-int", "client", pack(op=10, mid=7), "field 'mid'"),
    ("bind-account-space", "client", pack(op=11, account="alice smith"), "field 'account'"),
    ("bind-account-65", "client", pack(op=11, account="a" * 65), "field 'account'"),
    ("bind-account-nil", "client", pack(op=11, account=None), "field 'account'"),
    # REGISTERED, WELCOME
    ("registered-exp-missing", "server", pack(op=9, rid=RID, token=TOKEN),
     "field 'exp' must be a non-negative integer"),
    ("registered-exp-negative", "server", pack(op=9, rid=RID, token=TOKEN, exp=-1),
     "field 'exp' must be a non-negative integer"),
    ("registered-exp-uint64-max", "server", pack(op=9, rid=RID, token=TOKEN, exp=2**64 - 1),
     "field 'exp' must be a non-negative integer"),
    ("welcome-epoch-missing", "server", mutate(WEL, epoch=...), "field 'epoch'"),
    ("welcome-hb-string", "server", mutate(WEL, hb="10"), "field 'hb'"),
    ("welcome-node-colon", "server", mutate(WEL, node="gw:1"), "field 'node'"),
    ("welcome-rc-base-negative", "server", mutate(WEL, rc_base_ms=-1), "field 'rc_base_ms'"),
    ("welcome-rc-max-float", "server", mutate(WEL, rc_max_ms=1.5), "field 'rc_max_ms'"),
    # PUSH
    ("push-mid-missing", "server", mutate(PSH, mid=...), "field 'mid'"),
    ("push-task-space", "server", mutate(PSH, task="t 1"), "field 'task'"),
    ("push-ts-negative", "server", mutate(PSH, ts=-1), "field 'ts'"),
    ("push-msg-missing", "server", mutate(PSH, msg=...), "field 'msg' must be a map"),
    ("push-msg-string", "server", mutate(PSH, msg="Hi"), "field 'msg' must be a map"),
    ("push-msg-no-text", "server", mutate(PSH, msg={"body": ""}), "field 'msg'"),
    ("push-msg-data-without-data", "server", mutate(PSH, msg={"kind": "data"}), "field 'msg'"),
    ("push-msg-kind-unknown", "server", mutate(PSH, msg={"kind": "toast", "title": "x"}),
     "field 'msg'"),
    ("push-msg-title-257", "server", mutate(PSH, msg={"title": "x" * (MAX_TITLE + 1)}),
     "field 'msg'"),
    ("push-msg-body-4097", "server", mutate(PSH, msg={"body": "x" * (MAX_BODY + 1)}),
     "field 'msg'"),
    ("push-msg-data-nested", "server", mutate(PSH, msg={"title": "x", "data": {"k": {"a": 1}}}),
     "field 'msg'"),
    ("push-msg-data-bin", "server", mutate(PSH, msg={"title": "x", "data": {"k": b"\x00"}}),
     "field 'msg'"),
    ("push-msg-two-badges", "server", mutate(PSH, msg={"title": "x", "badge": 1,
                                                       "badge_add": 1}), "field 'msg'"),
    ("push-msg-click-url-without-target", "server",
     mutate(PSH, msg={"title": "x", "click": {"type": "url"}}), "field 'msg'"),
    # BYE, BOUND, RECALL
    ("bye-reason-missing", "server", pack(op=7, retry_ms=1000), "field 'reason'"),
    ("bye-reason-65", "server", pack(op=7, reason="r" * 65),
     "field 'reason' is longer than 64 characters"),
    ("bye-retry-negative", "server", pack(op=7, reason="shutdown", retry_ms=-5),
     "field 'retry_ms'"),
    ("bound-account-colon", "server", pack(op=12, account="a:b"), "field 'account'"),
    ("recall-mid-missing", "server", pack(op=13), "field 'mid'"),
]

# Valid but not as Herald encodes them: a decoder accepts these (unknown keys, any key order,
# defaults written out, wider integer and string headers than needed).
LENIENT: list[tuple[str, bytes, ClientFrame | ServerFrame]] = [
    ("unknown-keys-client", pack(op=4, mid="m1", future=[1, {"x": None}]), Ack(mid="m1")),
    ("unknown-keys-server", mutate(PSH, hint="later", prio2=1),
     Push(mid="m1", task="t1", msg={"title": "Hi"})),
    ("keys-in-any-order", msgpack.packb({"token": TOKEN, "rid": RID, "app": APP, "op": 1}),
     Hello(app=APP, rid=RID, token=TOKEN)),
    ("defaults-written-out-hello", mutate(HEL, v=1, locale="", tz="", appver=""),
     Hello(app=APP, rid=RID, token=TOKEN)),
    ("defaults-written-out-welcome", mutate(WEL, v=1, rc_base_ms=1000, rc_max_ms=60_000),
     Welcome(epoch=1, hb=10, node="gw-1")),
    ("defaults-written-out-push", mutate(PSH, ts=0), Push(mid="m1", task="t1",
                                                          msg={"title": "Hi"})),
    ("defaults-written-out-bye", pack(op=7, reason="shutdown", retry_ms=0),
     Bye(reason="shutdown")),
    ("empty-account-written-out", pack(op=11, account=""), Bind()),
    ("op-as-uint64", b"\x82\xa2op\xcf" + (4).to_bytes(8, "big") + b"\xa3mid\xa2m1",
     Ack(mid="m1")),
    ("epoch-as-int64", b"\x84\xa2op\x02\xa5epoch\xd3" + (7).to_bytes(8, "big")
     + b"\xa2hb\x0a\xa4node\xa4gw-1", Welcome(epoch=7, hb=10, node="gw-1")),
    ("str8-for-a-short-string", b"\x82\xa2op\x0d\xa3mid\xd9\x02m1", Recall(mid="m1")),
    ("map16-header", b"\xde\x00\x01\xa2op\x06", Pong()),
]

TOKEN_CASES: list[tuple[str, str, str, int]] = [
    ("s3cr3t", APP, RID, EXP),
    ("s3cr3t", APP, "r1", EXP),
    ("s3cr3t", "other.app", RID, EXP),
    ("Q2xpZW50U2VjcmV0LW5vdC1yZWFs_Qk9YLWRlbW8tMDEy", "demo.app", RID, 4_102_444_800),
    ("ключ-🔑", "a", "b", 0),
]


def frame_json(frame: ClientFrame | ServerFrame) -> dict[str, Any]:
    """The decoded form of a frame: ``op`` and every field, defaults included."""
    return {"op": int(frame.OP), **{f.name: getattr(frame, f.name)
                                    for f in dataclasses.fields(frame)}}


def direction(frame: ClientFrame | ServerFrame) -> str:
    return "client" if isinstance(frame, CLIENT_TYPES) else "server"


def _decoder(side: str) -> Callable[[bytes], Any]:
    return decode_client if side == "client" else decode_server


def valid_cases() -> list[dict[str, Any]]:
    cases = []
    for name, frame in VALID:
        data = encode(frame)
        side = direction(frame)
        if _decoder(side)(data) != frame:
            raise AssertionError(f"vector {name} does not round-trip")
        cases.append({"name": name, "direction": side, "hex": data.hex(),
                      "frame": frame_json(frame)})
    return cases


def lenient_cases() -> list[dict[str, Any]]:
    cases = []
    for name, data, frame in LENIENT:
        side = direction(frame)
        if _decoder(side)(data) != frame or encode(frame) == data:
            raise AssertionError(f"vector {name} is not a lenient encoding of its frame")
        cases.append({"name": name, "direction": side, "hex": data.hex(),
                      "frame": frame_json(frame)})
    return cases


def invalid_cases() -> list[dict[str, Any]]:
    cases = []
    for name, side, data, reason in INVALID:
        try:
            _decoder(side)(data)
        except DecodeError as err:
            if reason not in err.reason:
                raise AssertionError(f"vector {name}: {err.reason!r} lacks {reason!r}") from None
        else:
            raise AssertionError(f"vector {name} decodes")
        cases.append({"name": name, "direction": side, "hex": data.hex(),
                      "reason_contains": reason})
    return cases


def token_cases() -> list[dict[str, Any]]:
    return [{"secret": secret, "app": app, "rid": rid, "exp": exp,
             "token": tokens.sign(secret.encode(), app, rid, exp)}
            for secret, app, rid, exp in TOKEN_CASES]


def _dump(value: object) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False) + "\n"


def build() -> dict[str, str]:
    """File name -> the exact text of every vector file."""
    return {"frames.json": _dump(valid_cases()), "lenient.json": _dump(lenient_cases()),
            "invalid.json": _dump(invalid_cases()), "tokens.json": _dump(token_cases())}


def main() -> None:
    """Write the vector files next to this module."""
    for name, text in build().items():
        (HERE / name).write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {HERE / name}\n")


if __name__ == "__main__":
    main()
