"""Device tokens: what a registered device shows in HELLO to prove its registration id.

A token is ``<exp>.<sig>``: ``exp`` in unix seconds, ``sig`` the unpadded base64url HMAC-SHA256,
under the app's device secret (held by the server only), of ``app``, ``rid`` and ``exp``. A token
of one app or device does not verify for another, and nobody without the secret can make one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

_EXP = re.compile(r"0|[1-9][0-9]{0,11}")


class TokenError(Exception):
    """A token that does not prove the registration; ``reason`` is safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _signature(secret: bytes, app: str, rid: str, exp: int) -> str:
    mac = hmac.new(secret, f"{app}\n{rid}\n{exp}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def sign(secret: bytes, app: str, rid: str, exp: int) -> str:
    """The token for device ``rid`` of ``app``, valid until ``exp``."""
    return f"{exp}.{_signature(secret, app, rid, exp)}"


def verify(secret: bytes, app: str, rid: str, token: str, now: float | None) -> int:
    """Return the token's expiry, or raise ``TokenError`` (malformed, forged or expired).

    ``now=None`` checks only that the token was issued for this device, whatever its expiry
    (renewing an expired token needs that proof).
    """
    exp_text, _, signature = token.partition(".")
    # Only the spelling ``sign`` produces verifies: ASCII digits without a leading zero.
    if not _EXP.fullmatch(exp_text) or not signature or not signature.isascii():
        raise TokenError("malformed token")
    exp = int(exp_text)
    if not hmac.compare_digest(signature.encode(), _signature(secret, app, rid, exp).encode()):
        raise TokenError("token does not match this app and device")
    if now is not None and exp < now:
        raise TokenError("token expired")
    return exp
