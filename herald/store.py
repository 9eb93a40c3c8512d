"""The store interface: every piece of shared state Herald keeps, behind one protocol.

``herald.redis_store.RedisStore`` implements it on Redis; an embedded backend can implement it on
SQLite. Roles depend on this protocol only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from herald.audience_store import AudienceStore
from herald.policy_store import PolicyStore
from herald.stats_store import StatsStore
from herald.task_store import TaskStore
from herald.template_store import TemplateStore
from herald.timer_store import TimerStore
from proto.callbacks import CallbackConfig
from proto.envelopes import AppRecord, DeviceRecord


@dataclass(frozen=True, slots=True)
class Presence:
    """The node that holds a device's connection, and that connection's epoch."""

    node: str
    epoch: int


@dataclass(frozen=True, slots=True)
class Held:
    """A connection a node holds: what it refreshes and later drops."""

    app_id: str
    registration_id: str
    node: str
    epoch: int


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What the router needs to decide for one device."""

    presence: Presence | None
    record: DeviceRecord | None


@dataclass(frozen=True, slots=True)
class Stored:
    """A message waiting in a device's offline inbox."""

    msg_id: str
    frame: bytes


class Store(AudienceStore, TaskStore, StatsStore, TimerStore, PolicyStore, TemplateStore,
            Protocol):
    """Apps, devices, presence, node inboxes and offline inboxes; accounts, tags, attributes
    and audiences (``AudienceStore``); the progress of push tasks (``TaskStore``); their
    statistics (``StatsStore``); timers and scheduled pushes (``TimerStore``); delivery
    policies and frequency caps (``PolicyStore``); push templates (``TemplateStore``)."""

    async def ping(self) -> None:
        """Raise if the backend cannot be reached."""

    async def close(self) -> None:
        """Release connections."""

    # Apps and devices

    async def put_app(self, record: AppRecord) -> None:
        """Create or replace an app."""

    async def add_app(self, record: AppRecord) -> bool:
        """Create the app unless one of its id exists; whether it was created."""

    async def get_app(self, app_id: str) -> AppRecord | None:
        """The app, or None if there is no such app."""

    async def put_device(self, app_id: str, registration_id: str, record: DeviceRecord) -> None:
        """Create or replace a device record."""

    async def get_device(self, app_id: str, registration_id: str) -> DeviceRecord | None:
        """The device record, or None if the device is not registered."""

    async def vendor_token_devices(self, app_id: str, vendor: str,
                                   tokens: Sequence[str]) -> list[str | None]:
        """Per token, the registration id of the app's device whose record holds it for
        ``vendor``; None where no device does (receipts name tokens, events devices)."""

    async def bind_account(self, app_id: str, registration_id: str, account: str) -> None:
        """Bind the device to ``account`` (empty: unbind), leaving its previous account."""

    async def account_devices(self, app_id: str, account: str) -> list[str]:
        """Registration ids bound to ``account``."""

    # Presence

    async def connect_device(self, app_id: str, registration_id: str, node: str,
                             ttl_s: int) -> tuple[int, Presence | None]:
        """Record the device as online on ``node`` under a new epoch, larger than every earlier
        one; return it and the presence it replaced (another connection to close)."""

    async def refresh_presence(self, held: Sequence[Held], ttl_s: int) -> list[bool]:
        """Extend the presence of connections still held; False where another took over."""

    async def drop_presence(self, held: Sequence[Held]) -> None:
        """Remove presence where it still names these connections (node and epoch)."""

    async def lookup(self, devices: Sequence[tuple[str, str]]) -> list[DeviceState]:
        """Presence and record of each (app id, registration id), in one round trip."""

    async def node_beat(self, node: str, ttl_ms: int) -> None:
        """Mark ``node`` alive for ``ttl_ms``."""

    async def node_gone(self, node: str) -> None:
        """Mark ``node`` dead at once (it drained)."""

    async def nodes_alive(self, nodes: Sequence[str]) -> list[bool]:
        """Whether each node is alive."""

    # Node inboxes

    async def send_to_nodes(self, entries: Sequence[tuple[str, bytes]]) -> None:
        """Append each encoded ``NodeEntry`` to its node's inbox, in one round trip."""

    async def inbox_tail(self, node: str) -> bytes:
        """Id of the newest entry in ``node``'s inbox (``b'0-0'`` if empty): where to start."""

    async def read_inbox(self, node: str, after: bytes, block_ms: int,
                         count: int) -> list[tuple[bytes, bytes]]:
        """Entries of ``node``'s inbox after id ``after``, waiting up to ``block_ms``."""

    # Offline inboxes

    async def inbox_store(self, app_id: str, msg_id: str, frame: bytes, expires_at_ms: int,
                          registration_ids: Sequence[str], max_len: int) -> list[list[str]]:
        """Keep ``frame`` for each device until ``expires_at_ms``; per device, the message ids
        evicted because its inbox held more than ``max_len``."""

    async def inbox_read(self, app_id: str, registration_id: str) -> list[Stored]:
        """The device's unexpired inbox, oldest first; expired entries are dropped."""

    async def inbox_remove(self, app_id: str, registration_id: str,
                           msg_ids: Sequence[str]) -> None:
        """Remove delivered messages from the device's inbox."""

    async def inbox_purge(self, app_id: str, msg_id: str) -> list[str]:
        """Remove message ``msg_id`` from every offline inbox that holds it (a recall); the
        devices whose inbox still held it."""

    # Vendor credentials, tokens and quotas

    async def put_credentials(self, app_id: str, vendor: str,
                              credentials: Mapping[str, str]) -> None:
        """Create or replace the app's credentials for ``vendor`` (a flat string mapping)."""

    async def get_credentials(self, app_id: str, vendor: str) -> dict[str, str] | None:
        """The app's credentials for ``vendor``, or None if none are stored. Raises
        ``proto.errors.DecodeError`` if the stored value is not a flat string mapping."""

    async def put_callback(self, app_id: str, config: CallbackConfig) -> None:
        """Create or replace the app's callback config (with its secret)."""

    async def get_callback(self, app_id: str) -> CallbackConfig | None:
        """The app's callback config, or None if it has none."""

    async def delete_callback(self, app_id: str) -> bool:
        """Remove the app's callback config; whether it had one."""

    async def forget_vendor_token(self, app_id: str, registration_id: str, token: str) -> bool:
        """Clear the device's vendor and vendor token if its record still holds ``token`` (a
        device that registered a new token meanwhile keeps it); whether it was cleared."""

    async def take_daily_quota(self, app_id: str, vendor: str, day: str, amount: int,
                               limit: int) -> bool:
        """Count ``amount`` against the app's ``limit`` for ``vendor`` on ``day``, shared by
        every sender; False, counting nothing, if that would pass the limit."""
