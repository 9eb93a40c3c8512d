"""Service-account auth shared by vendors whose app credentials are an RSA key (FCM, Push Kit).

Both vendors start from a JWT the app server signs with the service account's private key:
Google exchanges it at its token endpoint for an OAuth access token (``vendors.fcm``), Huawei
takes it as the bearer token itself (``vendors.harmony``). Either way the outcome is a bearer
token with an expiry, kept by ``vendors.tokens.TokenCache`` per credential identity.

``ServiceAccountClient`` is the plumbing both clients share around it: one HTTP/2-capable
``httpx`` client, the token cache and the injected clock (tests move it instead of sleeping).

Secrets stay out of reprs, logs and exception messages: errors name the credential field, never
its value.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping

import jwt

from vendors.client import BaseClient
from vendors.common import seconds_left
from vendors.errors import AuthError
from vendors.http import new_client
from vendors.tokens import TokenCache


def check_pem(value: str, name: str) -> str:
    """``value`` if it looks like a PEM private key; the key itself is parsed when signing."""
    if "-----BEGIN" not in value or "PRIVATE KEY-----" not in value:
        raise ValueError(f"credentials field {name!r} is not a PEM private key")
    return value


def sign_jwt(private_key_pem: str, *, algorithm: str, kid: str,
             claims: Mapping[str, object]) -> str:
    """A compact JWT of ``claims`` signed with ``algorithm`` (RS256, PS256), ``kid`` in its header.

    A key that cannot sign is the app's credential problem: ``AuthError``, without key material.
    """
    try:
        return jwt.encode(dict(claims), private_key_pem, algorithm=algorithm,
                          headers={"kid": kid, "typ": "JWT"})
    except (ValueError, TypeError, jwt.exceptions.PyJWTError):
        raise AuthError(f"private_key (kid {kid}) cannot sign {algorithm}") from None


class ServiceAccountClient(BaseClient):
    """Base of a vendor client authenticated by a ``TokenCache``: HTTP client, tokens, clock."""

    def __init__(self, *, base_url: str, timeout_s: float, verify: ssl.SSLContext | bool,
                 clock: Callable[[], float]) -> None:
        self._base_url = base_url.rstrip("/")
        self._clock = clock
        # HTTP/2 where the vendor offers it (ALPN), HTTP/1.1 otherwise.
        self._http = new_client(timeout_s=timeout_s, verify=verify, http2=True)
        self._tokens = TokenCache(clock)

    async def close(self) -> None:
        """See ``VendorClient.close``."""
        await self._http.aclose()

    def _ttl_s(self, expires_at_ms: int, max_s: int) -> int | None:
        """Seconds the vendor may keep the message: None (its default) when there is no expiry,
        else what is left of it, within ``0..max_s``."""
        return seconds_left(expires_at_ms, self._clock(), max_s)
