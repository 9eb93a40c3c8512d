"""Bearer tokens of vendor APIs, cached per credential identity: one cache for every client.

Each vendor's auth ends in a token with an expiry: an OAuth access token (FCM, Huawei, Honor),
a self-signed JWT (HarmonyOS), a day-long auth token (OPPO, vivo). ``TokenCache`` keeps them:

- reused until ``margin_s`` before expiry, so a send never leaves with a token about to lapse;
- minted once at a time per identity: concurrent callers await the same minting task (single
  flight), so a burst of sends for one app costs one mint, and a failing token endpoint is asked
  once rather than once per waiting send;
- on a refusal by the vendor (the request callback raises ``TokenRefused``) dropped, minted
  again and the request retried once; a second refusal raises ``AuthError``.

Token values stay out of reprs; errors name the refusal, never a token or a secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from vendors.errors import AuthError

T = TypeVar("T")

#: Refresh this long before a cached token expires.
REFRESH_MARGIN_S = 60.0


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token and the unix time it expires at."""

    value: str = field(repr=False)
    expires_at: float


class TokenRefused(Exception):
    """Raised by a request callback when the vendor refused the token it was given."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenCache:
    """Tokens per credential identity, minted on demand and refreshed before expiry."""

    def __init__(self, clock: Callable[[], float], margin_s: float = REFRESH_MARGIN_S) -> None:
        self._clock = clock
        self._margin_s = margin_s
        self._tokens: dict[str, Token] = {}
        self._minting: dict[str, asyncio.Future[Token]] = {}

    async def get(self, identity: str, mint: Callable[[], Awaitable[Token]]) -> str:
        """A token for ``identity`` valid for at least the margin, minting one if needed.

        A mint already under way is joined, whether it succeeds or fails.
        """
        token = self._tokens.get(identity)
        if token is not None and token.expires_at - self._margin_s > self._clock():
            return token.value
        minting = self._minting.get(identity)
        if minting is None:
            minting = asyncio.ensure_future(self._mint(identity, mint))
            self._minting[identity] = minting
        # A caller cancelled while waiting must not cancel the mint the others wait for.
        return (await asyncio.shield(minting)).value

    async def _mint(self, identity: str, mint: Callable[[], Awaitable[Token]]) -> Token:
        try:
            token = await mint()
            self._tokens[identity] = token
            return token
        finally:
            del self._minting[identity]

    def drop(self, identity: str, value: str) -> None:
        """Forget ``value`` unless a concurrent refusal already replaced it with a newer one."""
        token = self._tokens.get(identity)
        if token is not None and token.value == value:
            del self._tokens[identity]

    async def call(self, identity: str, mint: Callable[[], Awaitable[Token]],
                   request: Callable[[str], Awaitable[T]]) -> T:
        """Run ``request(token)``; on ``TokenRefused`` mint a new token and retry once.

        A second refusal raises ``AuthError``: fresh credentials were refused too.
        """
        value = await self.get(identity, mint)
        try:
            return await request(value)
        except TokenRefused:
            self.drop(identity, value)
        value = await self.get(identity, mint)
        try:
            return await request(value)
        except TokenRefused as refused:
            self.drop(identity, value)
            raise AuthError(f"credentials refused after a refresh: {refused.reason}") from None
