"""The audience store interface: accounts, tags, attributes, automatic tags, and resolution.

``herald.redis_audience.RedisAudience`` implements it on Redis. The condition model and every
limit live in ``proto.audience``; a refused call raises ``proto.audience.AudienceError`` and
stores nothing.

Devices bind to accounts through ``Store.bind_account``; this interface reads those bindings
(an account's device set) and never writes them.

Resolution: ``resolve`` turns an ``Audience`` into a ``ResolvedAudience``, a set in the store
computed where the data lives, so that no process holds a whole audience. The set holds
registration ids (``Unit.DEVICES``: ``all``, ``registration_ids``, a filter of device
conditions alone) or account ids (``Unit.ACCOUNTS``: ``accounts``, a filter with tags or
attributes). ``scan_devices`` pages through it and expands each account to the devices bound
to it at that moment, narrowed to the audience's device set when the filter also had device
conditions. A fan-out consumes those pages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from proto.audience import Audience, ResolvedAudience
from proto.envelopes import DeviceRecord

#: A resolved audience lives this long: longer than the slowest fan-out of the largest app,
#: short enough that audiences of stopped or crashed fan-outs do not pile up.
RESOLVED_TTL_S = 24 * 3600


class AudienceStore(Protocol):
    """Accounts, tags, attributes and automatic tags of each app, and audiences over them."""

    # Accounts and devices

    async def import_accounts(self, app_id: str, accounts: Sequence[str]) -> int:
        """Make ``accounts`` known to the app (an all-accounts condition such as a ``not`` tag
        list reaches them); return how many were new."""

    async def add_device(self, app_id: str, registration_id: str) -> None:
        """Count the device among the app's devices (``all`` reaches it)."""

    async def observe_device(self, app_id: str, registration_id: str, record: DeviceRecord,
                             now_ms: int) -> None:
        """Index the device under its automatic tags (moving it if its data changed), record
        it as seen at ``now_ms``, and add it (and its account) to the app."""

    # Tags of accounts

    async def add_tags(self, app_id: str, accounts: Sequence[str], tags: Sequence[str]) -> None:
        """Give every account every tag, or nothing if any account would exceed its limit."""

    async def remove_tags(self, app_id: str, accounts: Sequence[str],
                          tags: Sequence[str]) -> None:
        """Take the tags off every account."""

    async def remove_all_tags(self, app_id: str, accounts: Sequence[str]) -> None:
        """Take every tag off every account."""

    async def tags(self, app_id: str, accounts: Sequence[str]) -> dict[str, list[str]]:
        """Each account's tags, sorted."""

    # Attributes of accounts

    async def declare_attributes(self, app_id: str, names: Sequence[str]) -> None:
        """Declare attribute names for the app, up to its limit in all."""

    async def attributes(self, app_id: str) -> list[str]:
        """The app's declared attribute names, sorted."""

    async def set_attributes(self, app_id: str,
                             values: Mapping[str, Mapping[str, str]]) -> None:
        """Set ``values[account][name] = value`` for declared names."""

    async def get_attributes(self, app_id: str,
                             accounts: Sequence[str]) -> dict[str, dict[str, str]]:
        """Each account's attribute values by name."""

    async def remove_attributes(self, app_id: str, accounts: Sequence[str],
                                names: Sequence[str]) -> None:
        """Remove the named attributes' values from every account."""

    # Audiences

    async def resolve(self, app_id: str, audience: Audience, now_ms: int,
                      ttl_s: int = RESOLVED_TTL_S) -> ResolvedAudience:
        """Compute the audience in the store, as of ``now_ms``, kept for ``ttl_s``."""

    async def scan_devices(self, app_id: str, resolved: ResolvedAudience, cursor: int,
                           count: int) -> tuple[int, list[str]]:
        """One page of the audience's registration ids from ``cursor`` (0 to start) and the
        cursor of the next page (0: done). About ``count`` members (accounts or devices) are
        read per page. A device may come in more than one page, as members may in Redis
        SSCAN: the consumer deduplicates (devices drop a message id they have shown)."""

    async def discard(self, app_id: str, resolved: ResolvedAudience) -> None:
        """Delete a resolved audience before its TTL (its fan-out finished or was stopped)."""
