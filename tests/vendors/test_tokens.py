"""The token cache every vendor client shares: reuse, single flight, refresh once."""

from __future__ import annotations

import asyncio

import pytest

from tests.vendors.helpers import Clock
from vendors.errors import AuthError, TransientError
from vendors.tokens import Token, TokenCache, TokenRefused


class Mint:
    """Mints ``t1``, ``t2``, ... valid for an hour, after yielding once; or fails."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.count = 0
        self.failing = False

    async def __call__(self) -> Token:
        self.count += 1
        await asyncio.sleep(0)
        if self.failing:
            raise TransientError("token endpoint down")
        return Token(f"t{self.count}", self.clock() + 3600)


async def test_concurrent_callers_share_one_mint_and_its_failure():
    clock = Clock(0.0)
    mint, cache = Mint(clock), TokenCache(clock)
    mint.failing = True
    outcomes = await asyncio.gather(*(cache.get("app", mint) for _ in range(5)),
                                    return_exceptions=True)
    assert mint.count == 1 and all(isinstance(o, TransientError) for o in outcomes)
    mint.failing = False
    assert await asyncio.gather(*(cache.get("app", mint) for _ in range(5))) == ["t2"] * 5
    clock.now = 3600 - 60
    assert await cache.get("app", mint) == "t3"


async def test_a_refused_token_is_replaced_once_then_auth_error():
    clock = Clock(0.0)
    mint, cache = Mint(clock), TokenCache(clock)
    seen: list[str] = []

    async def refuse_first(token: str) -> str:
        seen.append(token)
        if token == "t1":
            raise TokenRefused("expired")
        return "ok"

    assert await cache.call("app", mint, refuse_first) == "ok"
    assert seen == ["t1", "t2"]

    async def refuse_all(token: str) -> str:
        raise TokenRefused(f"refused {token}")

    with pytest.raises(AuthError, match="refused t3"):
        await cache.call("app", mint, refuse_all)
    assert mint.count == 3
    assert await cache.get("app", mint) == "t4"  # the refused token is not kept
