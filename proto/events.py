"""Delivery events on ``push.events``: JSON, one record per (task, stage, channel) and device,
or per many devices at once (``registration_ids``) where one step treats them alike.

Every role emits them, keyed by the task id; ``herald stats`` folds them into funnels. The
funnel a task reports follows the stages in order: ``targeted`` (the router decided for the
device), ``sendable`` (it had a way to be reached: online, a vendor channel, the offline
inbox), ``sent`` (written to its socket, or accepted by the vendor), ``delivered`` (the device
acknowledged it, or the vendor's receipt says it arrived), ``clicked``; ``failed`` with a
``reason`` is a loss. Consumers dedupe by (task, device, stage, channel), since Herald
delivers at least once.
"""

from __future__ import annotations

import time
from enum import StrEnum

import msgspec

from proto.errors import DecodeError


class Stage(StrEnum):
    """Where a delivery is."""

    #: The router decided for the device: it is in the push's audience.
    TARGETED = "targeted"
    #: The device had a way to be reached (``channel``: online, a vendor, the inbox).
    SENDABLE = "sendable"
    #: Handed to a channel: written to a device's socket, or accepted by a vendor.
    SENT = "sent"
    #: Kept in the offline inbox until the device connects or the lifetime ends.
    STORED = "stored"
    #: The device acknowledged it.
    DELIVERED = "delivered"
    #: The user opened it.
    CLICKED = "clicked"
    #: It will not reach the device; ``reason`` says why.
    FAILED = "failed"
    #: The request itself was refused before any device was considered.
    REJECTED = "rejected"
    #: The app recalled the push, and ``channel`` took it back from the device (a RECALL
    #: frame online, the offline inbox emptied, a vendor revoke or replacement).
    RECALLED = "recalled"


class Reason(StrEnum):
    """Why a delivery failed or was not attempted."""

    #: PushFlag 1 (online only) and the device was offline.
    OFFLINE = "offline"
    #: Offline, PushFlag 0, but the device has no vendor channel.
    NO_CHANNEL = "no_channel"
    #: The vendor said the token is not (or no longer) valid.
    TOKEN_INVALID = "token_invalid"
    #: The vendor kept failing after every retry.
    VENDOR_ERROR = "vendor_error"
    #: The request did not validate.
    INVALID_REQUEST = "invalid_request"
    #: Written to the device, which did not ACK within the ack timeout.
    ACK_TIMEOUT = "ack_timeout"
    #: The socket closed before the device acknowledged (or before the push was written).
    CLOSED = "closed"
    #: The device read too slowly and was disconnected with pushes unsent.
    SLOW_READER = "slow_reader"
    #: The push's lifetime ended before the device came back.
    EXPIRED = "expired"
    #: The device's offline inbox was full and this push was the oldest.
    INBOX_EVICTED = "inbox_evicted"
    #: The app has no credentials for the device's vendor channel.
    NO_CREDENTIALS = "no_credentials"
    #: The vendor refused the app's credentials, even after a refresh.
    AUTH = "auth"
    #: The vendor refused the request itself.
    REJECTED = "rejected"
    #: The payload built for the vendor exceeds its limit.
    PAYLOAD_TOO_LARGE = "payload_too_large"
    #: The vendor kept asking to slow down beyond the longest wait honoured.
    RATE_LIMITED = "rate_limited"
    #: The app's or the vendor's daily quota is spent.
    QUOTA_EXCEEDED = "quota_exceeded"
    #: The vendor cannot do what was asked (a message kind, a revoke).
    NOT_SUPPORTED = "not_supported"
    #: The app recalled the push before it reached the device.
    RECALLED = "recalled"
    #: The device's account had its app's frequency cap of pushes for the period already.
    FREQUENCY_CAPPED = "frequency_capped"


class Channel(StrEnum):
    """Delivery channels other than vendors (vendors are named by their vendor id)."""

    ONLINE = "online"
    #: The offline inbox: the device gets the push when it next connects.
    INBOX = "inbox"


class Event(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """One stage of one delivery, for one device (``registration_id``) or for each of many
    (``registration_ids``). ``platform`` is the devices' platform where the emitter knows it
    (the router, on ``targeted``). ``ts_ms`` is wall-clock milliseconds at the emitter."""

    stage: Stage
    task_id: str
    app_id: str = ""
    msg_id: str = ""
    registration_id: str = ""
    registration_ids: list[str] = []
    platform: str = ""
    channel: str = ""
    reason: str = ""
    node: str = ""
    detail: str = ""
    ts_ms: int = 0


    def devices(self) -> list[str]:
        """The registration ids the event is about (none for a task-level event)."""
        if self.registration_id:
            return [self.registration_id, *self.registration_ids]
        return self.registration_ids


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Event)


def now_ms() -> int:
    """Wall-clock time in milliseconds, the unit of every timestamp Herald records."""
    return time.time_ns() // 1_000_000


def encode_event(event: Event) -> bytes:
    """Encode an event as JSON."""
    return _encoder.encode(event)


def decode_event(data: bytes) -> Event:
    """Decode an event; ``DecodeError`` if it is not one."""
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise DecodeError(f"invalid event: {exc}") from None
