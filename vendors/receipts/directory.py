"""Which device holds a vendor token: receipts name tokens, events name registration ids.

Herald sends one request for up to 1,000 devices (Huawei, Honor, Xiaomi and vivo lists, OPPO
batches), and what a vendor echoes per request (a ``biTag``, a callback param of 50 or 64
characters) has no room for their registration ids. So the device is looked up by its token,
one round trip per post: ``herald.store.Store.vendor_token_devices`` on the store's index of
vendor tokens, which ``put_device`` keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class TokenDirectory(Protocol):
    """Finds the devices of vendor tokens (the store is one)."""

    async def vendor_token_devices(self, app_id: str, vendor: str,
                                   tokens: Sequence[str]) -> list[str | None]:
        """Per token, the registration id of the app's device whose record holds it for
        ``vendor``; None where no device does."""
