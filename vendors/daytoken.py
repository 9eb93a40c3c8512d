"""The base of clients whose vendor hands out day-long auth tokens (OPPO, vivo).

Both vendors take a signed auth request (app key, a millisecond timestamp, a digest with the
app's secret) and answer a token that lives 24 hours and names no expiry of its own. The token is
kept per app key by ``vendors.tokens.TokenCache``, its lifetime counted from before the auth
request so that Herald never uses it longer than the vendor keeps it, renewed a minute early,
and renewed once more if the vendor refuses it mid-day (then ``AuthError``).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

from vendors.client import BaseClient
from vendors.http import new_client
from vendors.tokens import Token, TokenCache

#: OPPO's and vivo's auth tokens live a day.
TOKEN_LIFETIME_S = 24 * 3600
#: A token is renewed this long before it expires.
TOKEN_MARGIN_S = 60.0


class DayTokenClient(BaseClient):
    """HTTP client, clock and day-long auth tokens of one vendor client."""

    def __init__(self, base_url: str, timeout_s: float, verify: ssl.SSLContext | bool,
                 clock: Callable[[], float]) -> None:
        self._base_url = base_url.rstrip("/")
        self._clock = clock
        self._http = new_client(timeout_s=timeout_s, verify=verify)
        self._tokens = TokenCache(clock, TOKEN_MARGIN_S)

    @staticmethod
    def _token(value: str, requested_at: float) -> Token:
        """The token ``value`` of an auth request sent at ``requested_at``."""
        return Token(value, requested_at + TOKEN_LIFETIME_S)

    async def close(self) -> None:
        """See ``VendorClient.close``."""
        await self._http.aclose()
