"""What every vendor client provides to the shared sender loop.

A client module (``vendors/<vendor>.py``) holds: a ``Credentials`` dataclass parsed from the
app's stored credential mapping (``from_mapping`` raises ``ValueError`` naming a missing or bad
field), a pure ``build_payload`` that maps ``proto.message.Message`` to the vendor's JSON (its
docstring states what the vendor cannot carry and the rule by which it is dropped), and a client
class implementing ``VendorClient``. ``send`` turns bad credentials into ``AuthError``
(``vendors.common.parse_credentials``). Clients keep their own auth tokens (OAuth access
tokens, JWTs) per app (``vendors.tokens.TokenCache``), refresh them before expiry, and on an
auth refusal refresh once and retry once before raising ``AuthError``.

Clients derive from ``BaseClient``, which gives the contract's defaults: credentials needed, no
revoke. A vendor with a revoke API (Huawei, HarmonyOS) sets ``can_revoke`` and overrides
``revoke``; elsewhere ``revoke`` raises ``NotSupportedError``, so that the recall flow records
the recall as not possible for that channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from proto.envelopes import VendorJob
from vendors.errors import NotSupportedError


@dataclass(frozen=True, slots=True)
class TargetResult:
    """Outcome for one device of a job: ``error`` is empty on success, else the vendor's reason.

    ``token_invalid`` marks a token the vendor says is not (or no longer) registered: the
    sender removes it from the device record. ``retriable`` marks a device whose own request
    failed for a passing reason (429, 5xx, timeout) in a job whose other devices went through:
    a client that fans a job out (APNs, FCM) reports it so, and the sender sends again to that
    device alone instead of failing it or sending the whole job twice.
    """

    registration_id: str
    error: str = ""
    token_invalid: bool = False
    retriable: bool = False


class VendorClient(Protocol):
    """Sends one job to the vendor; raises ``VendorError`` if the request failed as a whole."""

    #: Vendor id, as in ``push.vendor.<name>`` and ``DeviceRecord.vendor``.
    name: str
    #: Tokens one request may carry (1 for vendors without batch sends).
    max_batch: int
    #: Whether ``send`` needs the app's stored credentials (only the sandbox does without).
    needs_credentials: bool
    #: Whether ``revoke`` can withdraw a sent notification (the vendor has a revoke API).
    can_revoke: bool
    #: Whether a later message with the same collapse id replaces a shown notification, so a
    #: recall with replacement content can be sent as one.
    can_replace: bool

    async def send(self, job: VendorJob, credentials: Mapping[str, str]) -> list[TargetResult]:
        """Send ``job`` with the app's credentials and report per device, in target order."""

    async def revoke(self, job: VendorJob, credentials: Mapping[str, str]) -> None:
        """Withdraw the notification ``job`` sent from its targets' devices, where it is not
        delivered yet or shown and not opened. ``job`` is the job as it was sent (its msg_id
        and message name the notification the way ``send`` named it). Raises
        ``NotSupportedError`` when ``can_revoke`` is False, ``VendorError`` if it failed."""

    async def close(self) -> None:
        """Release connections."""


class BaseClient:
    """The contract's defaults for a vendor client: it needs credentials and cannot revoke."""

    name = ""
    needs_credentials = True
    can_revoke = False
    can_replace = False

    async def revoke(self, job: VendorJob, credentials: Mapping[str, str]) -> None:
        """See ``VendorClient.revoke``: this vendor has no revoke API."""
        raise NotSupportedError(f"{self.name} has no API to revoke a sent notification")
