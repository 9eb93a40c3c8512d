"""What every vendor client provides to the shared sender loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from proto.envelopes import VendorJob


@dataclass(frozen=True, slots=True)
class TargetResult:
    """Outcome for one device of a job: ``error`` is empty on success, else a reason."""

    registration_id: str
    error: str = ""
    token_invalid: bool = False


class VendorClient(Protocol):
    """Sends one job to the vendor; raises ``VendorError`` if the request failed as a whole."""

    name: str

    async def send(self, job: VendorJob) -> list[TargetResult]:
        """Send ``job`` and report per device."""

    async def close(self) -> None:
        """Release connections."""
