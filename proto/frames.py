"""Device frames, protocol version 1: msgpack maps over websocket binary messages.

Every frame is a map with an integer ``op``; the other keys are the frame's fields, named as in
the dataclasses below, and fields equal to their default are left out. ``decode_client`` and
``decode_server`` validate every field and raise ``DecodeError`` with a reason; they never raise
anything else, whatever the bytes. ``proto/PROTOCOL.md`` is the document SDK authors read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar

import msgpack
import msgspec

from proto.errors import DecodeError
from proto.limits import (
    ACCOUNT_RE,
    ID_RE,
    MAX_FRAME_BYTES,
    MAX_SERVER_FRAME_BYTES,
    MAX_VENDOR_TOKEN,
)
from proto.message import Message

PROTOCOL_VERSION = 1
#: Websocket subprotocol a client offers; the version is part of the name.
SUBPROTOCOL = "herald.v1"


class Op(IntEnum):
    """Frame types. Client and server ops never overlap, so a misdirected frame is an error."""

    HELLO = 1
    WELCOME = 2
    PUSH = 3
    ACK = 4
    PING = 5
    PONG = 6
    BYE = 7
    REGISTER = 8
    REGISTERED = 9
    CLICK = 10
    BIND = 11
    BOUND = 12
    RECALL = 13


class CloseCode(IntEnum):
    """Websocket close codes the gateway uses; ``proto/PROTOCOL.md`` says what a client does."""

    NORMAL = 1000
    GOING_AWAY = 1001
    UNSUPPORTED_DATA = 1003
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    BAD_FRAME = 4000
    HELLO_EXPECTED = 4001
    UNSUPPORTED_VERSION = 4002
    HEARTBEAT_TIMEOUT = 4003
    AUTH_FAILED = 4004
    REPLACED = 4005
    SLOW_READER = 4006
    RATE_LIMITED = 4008


class ByeReason:
    """Reasons carried by BYE frames."""

    SHUTDOWN = "shutdown"
    REPLACED = "replaced"


# Frames. Field names are the wire keys.


@dataclass(frozen=True, slots=True)
class Register:
    """Ask for a registration id and a device token (first install, or renewing ``rid``)."""

    OP: ClassVar[Op] = Op.REGISTER
    app: str
    key: str
    platform: str = ""
    vendor: str = ""
    vtoken: str = ""
    locale: str = ""
    tz: str = ""
    appver: str = ""
    #: Renewal: the registration id and the last token issued for it (expired is fine).
    rid: str = ""
    token: str = ""


@dataclass(frozen=True, slots=True)
class Registered:
    """The device's registration id and its signed token, valid until ``exp`` (unix seconds)."""

    OP: ClassVar[Op] = Op.REGISTERED
    rid: str
    token: str
    exp: int


@dataclass(frozen=True, slots=True)
class Hello:
    """Open a session as a registered device. The optional fields update the device record."""

    OP: ClassVar[Op] = Op.HELLO
    app: str
    rid: str
    token: str
    v: int = PROTOCOL_VERSION
    vendor: str = ""
    vtoken: str = ""
    locale: str = ""
    tz: str = ""
    appver: str = ""


@dataclass(frozen=True, slots=True)
class Welcome:
    """Session open: its epoch, the heartbeat interval, and the reconnect policy to follow."""

    OP: ClassVar[Op] = Op.WELCOME
    epoch: int
    hb: int
    node: str
    v: int = PROTOCOL_VERSION
    rc_base_ms: int = 1000
    rc_max_ms: int = 60_000


@dataclass(frozen=True, slots=True)
class Push:
    """A message for the device: ``msg`` is ``proto.message.Message`` as a map."""

    OP: ClassVar[Op] = Op.PUSH
    mid: str
    task: str
    msg: dict[str, Any]
    ts: int = 0


@dataclass(frozen=True, slots=True)
class Ack:
    """The device has message ``mid`` (sent for every PUSH, duplicates included)."""

    OP: ClassVar[Op] = Op.ACK
    mid: str


@dataclass(frozen=True, slots=True)
class Click:
    """The user opened the notification of message ``mid``."""

    OP: ClassVar[Op] = Op.CLICK
    mid: str


@dataclass(frozen=True, slots=True)
class Bind:
    """Bind the device to an account (user id); an empty account unbinds it."""

    OP: ClassVar[Op] = Op.BIND
    account: str = ""


@dataclass(frozen=True, slots=True)
class Bound:
    """The account the device is now bound to (empty: none)."""

    OP: ClassVar[Op] = Op.BOUND
    account: str = ""


@dataclass(frozen=True, slots=True)
class Recall:
    """Remove message ``mid`` if it is shown."""

    OP: ClassVar[Op] = Op.RECALL
    mid: str


@dataclass(frozen=True, slots=True)
class Ping:
    """Client heartbeat."""

    OP: ClassVar[Op] = Op.PING


@dataclass(frozen=True, slots=True)
class Pong:
    """Server answer to PING."""

    OP: ClassVar[Op] = Op.PONG


@dataclass(frozen=True, slots=True)
class Bye:
    """The server is about to close: why, and how long to wait before reconnecting."""

    OP: ClassVar[Op] = Op.BYE
    reason: str
    retry_ms: int = 0


ClientFrame = Register | Hello | Ack | Click | Bind | Ping
ServerFrame = Registered | Welcome | Push | Pong | Bye | Bound | Recall


def encode(frame: ClientFrame | ServerFrame) -> bytes:
    """Encode any frame to its msgpack bytes, leaving out fields equal to their default."""
    body: dict[str, Any] = {"op": int(frame.OP)}
    for f in dataclasses.fields(frame):
        value = getattr(frame, f.name)
        if f.default is dataclasses.MISSING or value != f.default:
            body[f.name] = value
    return msgpack.packb(body)


# Decoding: one checker per field; each returns the value or raises DecodeError.

Check = Callable[[dict[Any, Any], str], Any]


def _ident(obj: dict[Any, Any], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not ID_RE.match(value):
        raise DecodeError(f"field '{name}' must be 1-64 characters of A-Z a-z 0-9 _ . -")
    return value


def _opt_ident(obj: dict[Any, Any], name: str) -> str:
    return _ident(obj, name) if name in obj else ""


def _text(max_len: int, *, required: bool = False) -> Check:
    def check(obj: dict[Any, Any], name: str) -> str:
        value = obj.get(name, None if required else "")
        if not isinstance(value, str):
            raise DecodeError(f"field '{name}' must be a string")
        if len(value) > max_len:
            raise DecodeError(f"field '{name}' is longer than {max_len} characters")
        return value

    return check


def _uint(*, required: bool = True, default: int = 0) -> Check:
    def check(obj: dict[Any, Any], name: str) -> int:
        value = obj.get(name, None if required else default)
        if type(value) is not int or not 0 <= value < 2**63:
            raise DecodeError(f"field '{name}' must be a non-negative integer")
        return value

    return check


def _account(obj: dict[Any, Any], name: str) -> str:
    value = obj.get(name, "")
    if not isinstance(value, str) or (value and not ACCOUNT_RE.match(value)):
        raise DecodeError(f"field '{name}' must be 1-64 characters of A-Z a-z 0-9 _ . - @ +")
    return value


#: Message kinds a v1 frame carries as ``kind`` "notify" plus ``scene``: new values of
#: ``kind`` would need v2, while a client that ignores ``scene`` still shows a notification.
SCENES = frozenset({"chat", "call"})


def _known(value: dict[Any, Any]) -> dict[Any, Any]:
    # Message fields added later within v1 are ignored by older clients, not refused.
    known = {k: v for k, v in value.items() if k in Message.__struct_fields__}
    scene = value.get("scene")
    if isinstance(scene, str) and scene in SCENES and known.get("kind", "notify") == "notify":
        known["kind"] = scene
    return known


def _message(obj: dict[Any, Any], name: str) -> dict[str, Any]:
    value = obj.get(name)
    if not isinstance(value, dict):
        raise DecodeError(f"field '{name}' must be a map")
    try:
        msgspec.convert(_known(value), Message)
    except (msgspec.ValidationError, TypeError, ValueError) as exc:
        raise DecodeError(f"field '{name}' is not a valid message: {exc}"[:200]) from None
    return value


_token = _text(512, required=True)
# A frame without "v" speaks the version of the negotiated subprotocol.
_version = _uint(required=False, default=PROTOCOL_VERSION)
_device_fields: dict[str, Check] = {
    "vendor": _opt_ident, "vtoken": _text(MAX_VENDOR_TOKEN), "locale": _text(35),
    "tz": _text(64), "appver": _text(32),
}
_SPECS: dict[Op, tuple[type, dict[str, Check]]] = {
    Op.REGISTER: (Register, {"app": _ident, "key": _text(128, required=True),
                             "platform": _text(32), **_device_fields, "rid": _opt_ident,
                             "token": _text(512)}),
    Op.HELLO: (Hello, {"app": _ident, "rid": _ident, "token": _token, "v": _version,
                       **_device_fields}),
    Op.ACK: (Ack, {"mid": _ident}),
    Op.CLICK: (Click, {"mid": _ident}),
    Op.BIND: (Bind, {"account": _account}),
    Op.PING: (Ping, {}),
    Op.REGISTERED: (Registered, {"rid": _ident, "token": _token, "exp": _uint()}),
    Op.WELCOME: (Welcome, {"epoch": _uint(), "hb": _uint(), "node": _ident, "v": _version,
                           "rc_base_ms": _uint(required=False, default=1000),
                           "rc_max_ms": _uint(required=False, default=60_000)}),
    Op.PUSH: (Push, {"mid": _ident, "task": _ident, "msg": _message,
                     "ts": _uint(required=False)}),
    Op.PONG: (Pong, {}),
    Op.BYE: (Bye, {"reason": _text(64, required=True), "retry_ms": _uint(required=False)}),
    Op.BOUND: (Bound, {"account": _account}),
    Op.RECALL: (Recall, {"mid": _ident}),
}
_CLIENT_OPS = frozenset({Op.REGISTER, Op.HELLO, Op.ACK, Op.CLICK, Op.BIND, Op.PING})


def _unpack(data: bytes, limit: int) -> tuple[int, dict[Any, Any]]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError("frames are binary messages")
    if len(data) > limit:
        raise DecodeError(f"frame of {len(data)} bytes exceeds {limit}")
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types for bad bytes
        raise DecodeError(f"not a msgpack frame: {exc}"[:160]) from None
    if not isinstance(obj, dict):
        raise DecodeError("a frame is a msgpack map")
    op = obj.get("op")
    if type(op) is not int:
        raise DecodeError("field 'op' must be an integer")
    return op, obj


def _decode(data: bytes, *, client: bool) -> Any:
    op, obj = _unpack(data, MAX_FRAME_BYTES if client else MAX_SERVER_FRAME_BYTES)
    if op not in _SPECS:
        raise DecodeError(f"unknown op {op}")
    if (op in _CLIENT_OPS) != client:
        raise DecodeError(f"op {op} is not sent by {'clients' if client else 'servers'}")
    cls, checks = _SPECS[Op(op)]
    frame = cls(**{name: check(obj, name) for name, check in checks.items()})
    if isinstance(frame, Register | Hello) and bool(frame.vendor) != bool(frame.vtoken):
        raise DecodeError("fields 'vendor' and 'vtoken' go together")
    if isinstance(frame, Register) and bool(frame.rid) != bool(frame.token):
        raise DecodeError("fields 'rid' and 'token' go together")
    return frame


def decode_client(data: bytes) -> ClientFrame:
    """Decode a frame sent by a device; raise ``DecodeError`` with a reason if it is invalid."""
    frame: ClientFrame = _decode(data, client=True)
    return frame


def decode_server(data: bytes) -> ServerFrame:
    """Decode a frame sent by the server (the reference client and the tests use it)."""
    frame: ServerFrame = _decode(data, client=False)
    return frame


def message_map(message: Message) -> dict[str, Any]:
    """The ``msg`` field of a PUSH frame for ``message`` (defaults left out; a chat or call
    as ``kind`` "notify" with its ``scene``)."""
    msg: dict[str, Any] = msgspec.to_builtins(message)
    if message.kind in SCENES:
        msg |= {"kind": "notify", "scene": message.kind}
    return msg


def message_of(push: Push) -> Message:
    """The ``Message`` carried by a decoded PUSH frame."""
    return msgspec.convert(_known(push.msg), Message)
