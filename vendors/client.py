"""What every vendor client provides to the shared sender loop.

A client module (``vendors/<vendor>.py``) holds: a ``Credentials`` dataclass parsed from the
app's stored credential mapping (``from_mapping`` raises ``ValueError`` naming a missing or bad
field), a pure ``build_payload`` that maps ``proto.message.Message`` to the vendor's JSON (its
docstring states what the vendor cannot carry and the rule by which it is dropped), and a client
class implementing ``VendorClient``. Clients keep their own auth tokens (OAuth access tokens,
JWTs) per app, refresh them before expiry, and on an auth refusal refresh once and retry once
before raising ``AuthError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from proto.envelopes import VendorJob


@dataclass(frozen=True, slots=True)
class TargetResult:
    """Outcome for one device of a job: ``error`` is empty on success, else the vendor's reason.

    ``token_invalid`` marks a token the vendor says is not (or no longer) registered: the
    sender removes it from the device record.
    """

    registration_id: str
    error: str = ""
    token_invalid: bool = False


class VendorClient(Protocol):
    """Sends one job to the vendor; raises ``VendorError`` if the request failed as a whole."""

    #: Vendor id, as in ``push.vendor.<name>`` and ``DeviceRecord.vendor``.
    name: str
    #: Tokens one request may carry (1 for vendors without batch sends).
    max_batch: int

    async def send(self, job: VendorJob, credentials: Mapping[str, str]) -> list[TargetResult]:
        """Send ``job`` with the app's credentials and report per device, in target order."""

    async def close(self) -> None:
        """Release connections."""
