"""Records that travel between roles: the push request, node deliveries and vendor jobs.

``PushRequest`` is the public contract on ``push.requests``: JSON, written by backends in any
language and by the HTTP API. The others are internal, msgpack, and change with Herald.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

import msgspec

from proto.audience import Audience, AudienceKind, ResolvedAudience
from proto.errors import DecodeError
from proto.events import now_ms
from proto.limits import (
    ID_PATTERN,
    IDEMPOTENCY_PATTERN,
    MAX_CALL_LIFETIME_S,
    MAX_LIFETIME_S,
    MAX_SCHEDULE_AHEAD_S,
    MAX_SPEED,
    MAX_TARGETS,
    MAX_VENDOR_TOKEN,
    MIN_SPEED,
)
from proto.message import Message
from proto.templates import TemplateRef

Id = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]


class PushContent(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True,
                  omit_defaults=True):
    """What to push (``message``, or a ``template`` with its variables: exactly one of them),
    to whom, and what to do when offline: a push request without its ids, as the HTTP API
    takes it. A template is filled in (``proto.templates.render``) before anything is sent;
    a missing or unknown variable refuses the push.

    The devices are named in exactly one of two ways: ``registration_ids`` (up to 1,000, the
    shorthand of ``{"audience": {"registration_ids": [...]}}``) or ``audience`` (all users, a
    tag, attribute or device filter, a list of accounts; see ``proto.audience``).
    ``push_flag`` 0 delivers online and through the vendor channel when offline; 1 delivers
    online only. ``lifetime_s`` is how long an offline device may still get it (0 to 7 days).
    ``idempotency_key`` (like Tencent's MsgRandom, OneSignal's idempotency_key): a request
    repeating the key of one of the app's tasks in the last 7 days is that task, not a second
    push, whether it comes by HTTP or Kafka.
    ``send_at_ms`` schedules the push (epoch milliseconds, at most 90 days ahead; a time past
    is now). ``speed`` spreads its audience evenly at that many devices per second, over all
    routers together. ``urgent`` pushes pass the app's quiet hours and frequency cap.
    """

    message: Message | None = None
    template: TemplateRef | None = None
    registration_ids: Annotated[list[Id], msgspec.Meta(max_length=MAX_TARGETS)] = []
    audience: Audience | None = None
    push_flag: Literal[0, 1] = 0
    lifetime_s: Annotated[int, msgspec.Meta(ge=0, le=MAX_LIFETIME_S)] = 0
    idempotency_key: Annotated[str, msgspec.Meta(pattern=IDEMPOTENCY_PATTERN)] | None = None
    send_at_ms: Annotated[int, msgspec.Meta(ge=0)] | None = None
    speed: Annotated[int, msgspec.Meta(ge=MIN_SPEED, le=MAX_SPEED)] | None = None
    urgent: bool = False

    def __post_init__(self) -> None:
        if (self.message is None) == (self.template is None):
            raise ValueError("give exactly one of message or template")
        if bool(self.registration_ids) == (self.audience is not None):
            raise ValueError("name the devices in exactly one of registration_ids or audience")
        if self.send_at_ms is not None and self.send_at_ms > now_ms() + MAX_SCHEDULE_AHEAD_S * 1000:
            raise ValueError("send_at_ms is more than 90 days ahead")
        if (self.message is not None and self.message.kind == "call"
                and self.lifetime_s > MAX_CALL_LIFETIME_S):
            raise ValueError(f"a call's lifetime_s is at most {MAX_CALL_LIFETIME_S} s")

    def targets(self) -> list[str] | None:
        """The registration ids, if the push names its devices one by one; None if its
        audience has to be resolved (all users, a filter, accounts)."""
        if self.registration_ids:
            return self.registration_ids
        assert self.audience is not None
        return self.audience.registration_ids or None

    def audience_kind(self) -> AudienceKind:
        """The kind of audience the push names."""
        if self.audience is None:
            return AudienceKind.REGISTRATION_IDS
        return self.audience.kind()


class PushRequest(PushContent, forbid_unknown_fields=True, kw_only=True, frozen=True,
                  omit_defaults=True):
    """One push task on ``push.requests``: ``PushContent`` with the app it belongs to and the
    task id every event of the push carries."""

    task_id: Id
    app_id: Id


class RecallRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True,
                    omit_defaults=True):
    """Recall a task on ``push.recalls``: stop what is left of its fan-out, drop it from
    offline inboxes, tell online devices to remove it, revoke it at vendors that can. With a
    ``message``, devices whose channel can overwrite a shown notification (APNs and FCM by
    collapse id, Huawei, Honor) get it in place of the recalled one."""

    task_id: Id
    app_id: Id
    message: Message | None = None


class AppRecord(msgspec.Struct, array_like=True, frozen=True):
    """An app's credentials: devices prove the client key, backends the server secret; the
    device secret signs device tokens and never leaves the server."""

    app_id: str
    client_key: str
    server_secret: str
    device_secret: str
    created_ms: int = 0


class DeviceRecord(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    """What the store keeps about a registered device."""

    platform: str = ""
    vendor: str = ""
    vendor_token: Annotated[str, msgspec.Meta(max_length=MAX_VENDOR_TOKEN)] = ""
    locale: str = ""
    tz: str = ""
    app_version: str = ""
    account: str = ""
    created_ms: int = 0


class NodeDelivery(msgspec.Struct, array_like=True, frozen=True, tag="d"):
    """Node inbox entry: a PUSH frame encoded once, for many devices of one app.

    ``push_flag`` and ``expires_at_ms`` travel along so that the node can send a push it could
    not deliver back down the offline path (``Fallback``).
    """

    app_id: str
    task_id: str
    msg_id: str
    frame: bytes
    registration_ids: list[str]
    push_flag: int = 0
    expires_at_ms: int = 0
    #: The push is also in these devices' offline inboxes: an ACK removes it from there, and a
    #: failed attempt leaves it there instead of falling back.
    in_inbox: bool = False


class NodeKick(msgspec.Struct, array_like=True, frozen=True, tag="k"):
    """Node inbox entry: close the device's connections older than ``epoch`` (a newer login)."""

    app_id: str
    registration_id: str
    epoch: int


class NodeRecall(msgspec.Struct, array_like=True, frozen=True, tag="r"):
    """Node inbox entry: tell these devices to remove message ``msg_id``."""

    app_id: str
    msg_id: str
    registration_ids: list[str]


NodeEntry = NodeDelivery | NodeKick | NodeRecall


class Fallback(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    """Pushes a node could not deliver online, for the router's offline path (``push.fallback``).

    ``frame`` is the PUSH frame as the node had it; the router reads the message back from it.
    """

    app_id: str
    task_id: str
    msg_id: str
    frame: bytes
    registration_ids: list[str]
    push_flag: int
    expires_at_ms: int
    reason: str
    node: str


class VendorTarget(msgspec.Struct, array_like=True, frozen=True):
    """A device to reach through a vendor channel."""

    registration_id: str
    token: str


class VendorJob(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    """Offline deliveries of one task through one vendor, for a batch of devices; with
    ``recall``, taking message ``msg_id`` back from them (``message`` is then the replacement
    to show in its place where the channel can, or ``recall_message``)."""

    app_id: str
    task_id: str
    msg_id: str
    message: Message
    targets: list[VendorTarget]
    expires_at_ms: int = 0
    recall: bool = False
    #: With ``recall``: ``message`` replaces the recalled notification where the channel can.
    replace: bool = False


class FanoutPush(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    """The part of a push every fan-out record carries: the PUSH frame encoded once for the
    whole audience, and the message for the vendor channels. A recall's fan-out carries the
    RECALL frame, and the replacement message (``replace``) or ``recall_message``."""

    app_id: str
    task_id: str
    msg_id: str
    message: Message
    frame: bytes
    push_flag: int
    expires_at_ms: int = 0
    recall: bool = False
    replace: bool = False
    #: Devices per second the audience is spread at (0: as fast as it goes), from
    #: ``started_ms``: a shard is routed when the devices before it have had their time.
    speed: int = 0
    started_ms: int = 0
    #: The request's ``urgent``: its shards pass quiet hours and the frequency cap.
    urgent: bool = False
    #: A shard of devices held through their quiet hours: not held again.
    released: bool = False


class FanoutStep(msgspec.Struct, array_like=True, frozen=True, tag="s"):
    """Fan-out record: read the next pages of a resolved audience from ``cursor`` and cut them
    into shards. Steps of one task form a chain (step ``seq`` publishes step ``seq + 1``),
    keyed by the task id, so one router at a time walks an audience."""

    push: FanoutPush
    resolved: ResolvedAudience
    seq: int
    cursor: int
    #: Devices the steps before this one cut (where a paced push's schedule stands).
    before: int = 0


class FanoutShard(msgspec.Struct, array_like=True, frozen=True, tag="h"):
    """Fan-out record: route these devices of a push. ``shard`` names it within its task
    (``step.index``), so that a shard routed once is not routed again."""

    push: FanoutPush
    shard: str
    registration_ids: list[str]


FanoutRecord = FanoutStep | FanoutShard

def recall_message(msg_id: str) -> Message:
    """What a recall carries when it replaces nothing: a pass-through naming the message, which
    an app's own code can act on where the channel has no revoke."""
    return Message(kind="data", data={"herald_recall": msg_id})


T = TypeVar("T")

_push_request = msgspec.json.Decoder(PushRequest)
_recall_request = msgspec.json.Decoder(RecallRequest)
_node_entry = msgspec.msgpack.Decoder(NodeEntry)
_fallback = msgspec.msgpack.Decoder(Fallback)
_app_record = msgspec.msgpack.Decoder(AppRecord)
_vendor_job = msgspec.msgpack.Decoder(VendorJob)
_device_record = msgspec.msgpack.Decoder(DeviceRecord)
_fanout = msgspec.msgpack.Decoder(FanoutRecord)
_msgpack = msgspec.msgpack.Encoder()


def _decode(decoder: msgspec.json.Decoder[T] | msgspec.msgpack.Decoder[T], data: bytes,
               what: str) -> T:
    try:
        return decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise DecodeError(f"invalid {what}: {exc}") from None


def decode_push_request(data: bytes) -> PushRequest:
    """Decode a JSON push request; ``DecodeError.reason`` names the first bad field."""
    return _decode(_push_request, data, "push request")


def encode_push_request(request: PushRequest) -> bytes:
    """Encode a push request as the JSON a backend would publish."""
    return msgspec.json.encode(request)


def decode_recall_request(data: bytes) -> RecallRequest:
    """Decode a JSON recall request."""
    return _decode(_recall_request, data, "recall request")


def encode_recall_request(request: RecallRequest) -> bytes:
    """Encode a recall request as the JSON a backend would publish."""
    return msgspec.json.encode(request)


def decode_node_entry(data: bytes) -> NodeEntry:
    """Decode a node inbox entry."""
    return _decode(_node_entry, data, "node inbox entry")


def decode_fallback(data: bytes) -> Fallback:
    """Decode a fallback record."""
    return _decode(_fallback, data, "fallback")


def decode_app_record(data: bytes) -> AppRecord:
    """Decode a stored app record."""
    return _decode(_app_record, data, "app record")


def decode_vendor_job(data: bytes) -> VendorJob:
    """Decode a vendor job."""
    return _decode(_vendor_job, data, "vendor job")


def decode_device_record(data: bytes) -> DeviceRecord:
    """Decode a stored device record."""
    return _decode(_device_record, data, "device record")


def decode_fanout(data: bytes) -> FanoutRecord:
    """Decode a fan-out record."""
    return _decode(_fanout, data, "fan-out record")


def encode_internal(record: NodeEntry | Fallback | VendorJob | DeviceRecord | AppRecord
                    | FanoutRecord) -> bytes:
    """Encode an internal record as msgpack."""
    return _msgpack.encode(record)
