"""The store interface: every piece of shared state Herald keeps, behind one protocol.

``herald.redis_store.RedisStore`` implements it on Redis; an embedded backend can implement it on
SQLite. Roles depend on this protocol only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from proto.envelopes import DeviceRecord


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


class Store(Protocol):
    """Presence, device records and node inboxes."""

    async def ping(self) -> None:
        """Raise if the backend cannot be reached."""

    async def close(self) -> None:
        """Release connections."""

    async def connect_device(self, app_id: str, registration_id: str, node: str,
                             record: DeviceRecord, ttl_s: int) -> int:
        """Record the device as online on ``node`` under a new epoch, and store its record.

        Returns the epoch, which is larger than every earlier epoch of the device.
        """

    async def refresh_presence(self, held: Sequence[Held], ttl_s: int) -> list[bool]:
        """Extend the presence of connections still held; False where another took over."""

    async def drop_presence(self, held: Held) -> bool:
        """Remove presence if it still names this connection (node and epoch)."""

    async def lookup(self, devices: Sequence[tuple[str, str]]) -> list[DeviceState]:
        """Presence and record of each (app id, registration id), in one round trip."""

    async def deliver_to_nodes(self, entries: Sequence[tuple[str, bytes]]) -> None:
        """Append each encoded ``NodeDelivery`` to its node's inbox, in one round trip."""

    async def inbox_tail(self, node: str) -> bytes:
        """Id of the newest entry in ``node``'s inbox (``b'0-0'`` if empty): where to start."""

    async def read_inbox(self, node: str, after: bytes, block_ms: int,
                         count: int) -> list[tuple[bytes, bytes]]:
        """Entries of ``node``'s inbox after id ``after``, waiting up to ``block_ms``."""
