"""Creating apps: the credentials an app gets once."""

from __future__ import annotations

import secrets

from proto.envelopes import AppRecord
from proto.events import now_ms


def new_app(app_id: str) -> AppRecord:
    """Fresh credentials for ``app_id``: a client key for devices, a server secret for
    backends, and the device secret that signs device tokens (never shown)."""
    return AppRecord(app_id=app_id, client_key=secrets.token_urlsafe(24),
                     server_secret=secrets.token_urlsafe(32),
                     device_secret=secrets.token_urlsafe(32), created_ms=now_ms())
