"""Device frames, version 0: msgpack maps over websocket binary messages.

Every frame is a map with an integer ``op``. Clients send HELLO, ACK and PING; the server sends
WELCOME, PUSH, PONG and BYE. ``decode_client`` and ``decode_server`` validate every field and raise
``DecodeError`` with a reason; they never raise anything else, whatever the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import msgpack

from proto.errors import DecodeError
from proto.limits import ID_RE, MAX_DATA_KEYS, MAX_FRAME_BYTES, MAX_VENDOR_TOKEN

PROTOCOL_VERSION = 0
#: Websocket subprotocol a client offers; the version is part of the name.
SUBPROTOCOL = "herald.v0"


class Op(IntEnum):
    """Frame types. Client and server ops never overlap, so a misdirected frame is an error."""

    HELLO = 1
    WELCOME = 2
    PUSH = 3
    ACK = 4
    PING = 5
    PONG = 6
    BYE = 7


class CloseCode(IntEnum):
    """Websocket close codes the gateway uses, and what a client should do on each."""

    #: Normal close (for example after BYE): reconnect with the suggested delay.
    NORMAL = 1000
    #: The node is shutting down: reconnect after the delay given in BYE.
    GOING_AWAY = 1001
    #: Text message or frame larger than the limit: fix the client; do not retry blindly.
    UNSUPPORTED_DATA = 1003
    MESSAGE_TOO_BIG = 1009
    #: Unexpected server error: reconnect with backoff.
    INTERNAL_ERROR = 1011
    #: A frame failed to decode (the close reason says why): fix the client.
    BAD_FRAME = 4000
    #: The first frame was not HELLO, or HELLO did not arrive in time.
    HELLO_EXPECTED = 4001
    #: HELLO asked for a protocol version this server does not speak.
    UNSUPPORTED_VERSION = 4002
    #: No frame within the heartbeat timeout: reconnect.
    HEARTBEAT_TIMEOUT = 4003


class ByeReason:
    """Reasons carried by BYE frames."""

    SHUTDOWN = "shutdown"
    HEARTBEAT_TIMEOUT = "heartbeat_timeout"


@dataclass(frozen=True, slots=True)
class Hello:
    """First client frame: who the device is and how to reach it when it is offline."""

    app: str
    rid: str
    version: int = PROTOCOL_VERSION
    platform: str = ""
    vendor: str = ""
    vendor_token: str = ""


@dataclass(frozen=True, slots=True)
class Welcome:
    """Server reply to HELLO: the connection epoch and the heartbeat interval in seconds."""

    epoch: int
    heartbeat_s: int
    node: str
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class Push:
    """A notification (``kind='notify'``) or pass-through message (``kind='data'``)."""

    mid: str
    task: str
    kind: str = "notify"
    title: str = ""
    body: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    ts_ms: int = 0


@dataclass(frozen=True, slots=True)
class Ack:
    """The device has the message ``mid`` (sent once per message, duplicates included)."""

    mid: str


@dataclass(frozen=True, slots=True)
class Ping:
    """Client heartbeat."""


@dataclass(frozen=True, slots=True)
class Pong:
    """Server answer to PING."""


@dataclass(frozen=True, slots=True)
class Bye:
    """The server is about to close: why, and how long to wait before reconnecting."""

    reason: str
    retry_ms: int = 0


ClientFrame = Hello | Ack | Ping
ServerFrame = Welcome | Push | Pong | Bye

_PING = msgpack.packb({"op": Op.PING})
_PONG = msgpack.packb({"op": Op.PONG})


def encode(frame: ClientFrame | ServerFrame) -> bytes:
    """Encode any frame to its msgpack bytes."""
    match frame:
        case Hello():
            body: dict[str, Any] = {"op": Op.HELLO, "v": frame.version, "app": frame.app,
                                    "rid": frame.rid}
            if frame.platform:
                body["platform"] = frame.platform
            if frame.vendor:
                body["vendor"] = frame.vendor
                body["vtoken"] = frame.vendor_token
        case Welcome():
            body = {"op": Op.WELCOME, "v": frame.version, "epoch": frame.epoch,
                    "hb": frame.heartbeat_s, "node": frame.node}
        case Push():
            body = {"op": Op.PUSH, "mid": frame.mid, "task": frame.task, "kind": frame.kind,
                    "title": frame.title, "body": frame.body, "data": frame.data,
                    "ts": frame.ts_ms}
        case Ack():
            body = {"op": Op.ACK, "mid": frame.mid}
        case Ping():
            return _PING
        case Pong():
            return _PONG
        case Bye():
            body = {"op": Op.BYE, "reason": frame.reason, "retry_ms": frame.retry_ms}
    return msgpack.packb(body)


def _unpack(data: bytes) -> tuple[int, dict[Any, Any]]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError("frames are binary messages")
    if len(data) > MAX_FRAME_BYTES:
        raise DecodeError(f"frame of {len(data)} bytes exceeds {MAX_FRAME_BYTES}")
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


def _str(obj: dict[Any, Any], name: str, *, max_len: int, required: bool = True,
         ident: bool = False) -> str:
    value = obj.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise DecodeError(f"field '{name}' must be a string")
    if ident and not ID_RE.match(value):
        raise DecodeError(f"field '{name}' must be 1-64 characters of A-Z a-z 0-9 _ . -")
    if len(value) > max_len:
        raise DecodeError(f"field '{name}' is longer than {max_len} characters")
    return value


def _int(obj: dict[Any, Any], name: str) -> int:
    value = obj.get(name)
    if type(value) is not int or value < 0:
        raise DecodeError(f"field '{name}' must be a non-negative integer")
    return value


def decode_client(data: bytes) -> ClientFrame:
    """Decode a frame sent by a device; raise ``DecodeError`` with a reason if it is invalid."""
    op, obj = _unpack(data)
    if op == Op.ACK:
        return Ack(mid=_str(obj, "mid", max_len=64, ident=True))
    if op == Op.PING:
        return Ping()
    if op == Op.HELLO:
        vendor = _str(obj, "vendor", max_len=32, required=False)
        if vendor and not ID_RE.match(vendor):
            raise DecodeError("field 'vendor' must be a vendor name such as 'fcm'")
        # A token without a vendor cannot be used, so it is not kept.
        token = _str(obj, "vtoken", max_len=MAX_VENDOR_TOKEN) if vendor else ""
        if vendor and not token:
            raise DecodeError("field 'vtoken' must not be empty when 'vendor' is given")
        return Hello(
            version=_int(obj, "v"),
            app=_str(obj, "app", max_len=64, ident=True),
            rid=_str(obj, "rid", max_len=64, ident=True),
            platform=_str(obj, "platform", max_len=32, required=False),
            vendor=vendor,
            vendor_token=token,
        )
    if op in iter(Op):
        raise DecodeError(f"op {op} is not sent by clients")
    raise DecodeError(f"unknown op {op}")


def decode_server(data: bytes) -> ServerFrame:
    """Decode a frame sent by the server (used by the reference client and the tests)."""
    op, obj = _unpack(data)
    if op == Op.PUSH:
        payload = obj.get("data", {})
        if (not isinstance(payload, dict) or len(payload) > MAX_DATA_KEYS
                or not all(isinstance(k, str) for k in payload)):
            raise DecodeError(f"field 'data' must be a map of at most {MAX_DATA_KEYS} string keys")
        kind = _str(obj, "kind", max_len=16)
        if kind not in ("notify", "data"):
            raise DecodeError("field 'kind' must be 'notify' or 'data'")
        return Push(
            mid=_str(obj, "mid", max_len=64, ident=True),
            task=_str(obj, "task", max_len=64, ident=True),
            kind=kind,
            title=_str(obj, "title", max_len=MAX_FRAME_BYTES, required=False),
            body=_str(obj, "body", max_len=MAX_FRAME_BYTES, required=False),
            data=payload,
            ts_ms=_int(obj, "ts"),
        )
    if op == Op.PONG:
        return Pong()
    if op == Op.WELCOME:
        return Welcome(epoch=_int(obj, "epoch"), heartbeat_s=_int(obj, "hb"),
                       node=_str(obj, "node", max_len=64, ident=True), version=_int(obj, "v"))
    if op == Op.BYE:
        return Bye(reason=_str(obj, "reason", max_len=64), retry_ms=_int(obj, "retry_ms"))
    if op in iter(Op):
        raise DecodeError(f"op {op} is not sent by servers")
    raise DecodeError(f"unknown op {op}")
