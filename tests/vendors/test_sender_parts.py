"""The sender's pure parts: retry policy, rate limiters, the credential cache."""

from __future__ import annotations

import asyncio

import pytest

from herald.backoff import Backoff
from tests.vendors.fakes import MemoryStore
from tests.vendors.helpers import Clock
from vendors.credentials import CredentialCache, Secrets
from vendors.errors import (
    AuthError,
    QuotaExceededError,
    RateLimitedError,
    RejectedError,
    TransientError,
)
from vendors.limits import Limiter, TokenBucket
from vendors.policy import GiveUp, Retry, RetryPolicy

#: 2023-11-14 22:13:20 UTC: 06:13:20 on the 15th in China.
NOW = 1_700_000_000.0
POLICY = RetryPolicy(max_attempts=4, backoff=Backoff(1.0, 8.0), max_wait_s=60)


@pytest.mark.parametrize(("error", "reason"), [
    (AuthError("refused"), "auth"), (RejectedError("bad"), "rejected")])
def test_final_errors_give_up_at_once_unparked(error, reason):
    assert POLICY.after(error, 1, 0, 0) == GiveUp(reason, error.reason, park=False)


def test_retry_after_is_honoured_and_marks_a_rate_limit_wait():
    assert POLICY.after(RateLimitedError("429", retry_after_s=7), 1, 0, 0) == Retry(7, True)
    decision = POLICY.after(TransientError("503"), 3, 0, 0)
    assert isinstance(decision, Retry) and 0 <= decision.delay_s <= 4 and not decision.throttled


def test_waits_over_the_cap_or_past_expiry_or_attempts_exhausted_park():
    capped = POLICY.after(RateLimitedError("quota", retry_after_s=61), 1, 0, 0)
    assert capped == GiveUp("rate_limited", "quota (retry after 61 s is over the 60 s cap)",
                            park=True)
    late = POLICY.after(RateLimitedError("429", retry_after_s=5), 1, 1_000, 5_000)
    assert isinstance(late, GiveUp) and late.park and "expires" in late.detail
    spent = POLICY.after(TransientError("503"), 4, 0, 0)
    assert spent == GiveUp("vendor_error", "503 (after 4 attempts)", park=True)
    quota = POLICY.after(QuotaExceededError("full", retry_after_s=3600), 1, 0, 0)
    assert isinstance(quota, GiveUp) and quota.reason == "quota_exceeded" and quota.park


def test_token_bucket_spaces_requests_beyond_the_burst():
    clock = Clock(0.0)
    bucket = TokenBucket(2, clock)
    assert [bucket.reserve() for _ in range(4)] == [0.0, 0.0, 0.5, 1.0]
    clock.now = 1.0
    assert bucket.reserve() == 0.5


async def test_limiter_counts_the_daily_quota_per_app_and_day_in_the_store():
    store = MemoryStore()
    clock = Clock(NOW)
    limiter = Limiter(store, "oppo", vendor_rps=0, app_rps=0, app_daily_quota=3,
                      app_limits={"big": {"daily_quota": 100}}, utc_offset_h=8, clock=clock)
    await limiter.take_quota("app", 2)
    with pytest.raises(QuotaExceededError, match="daily quota of 3") as err:
        await limiter.take_quota("app", 2)
    assert err.value.retry_after_s == 17 * 3600 + 46 * 60 + 40  # to midnight in China
    await limiter.take_quota("big", 50)
    assert store.quotas == {("app", "oppo", "2023-11-15"): 2, ("big", "oppo", "2023-11-15"): 50}
    clock.now += 18 * 3600  # the next day in China
    await limiter.take_quota("app", 3)


async def test_limiter_without_limits_neither_waits_nor_counts():
    store = MemoryStore()
    limiter = Limiter(store, "fcm", vendor_rps=0, app_rps=0, app_daily_quota=0, app_limits={},
                      utc_offset_h=0)
    await limiter.wait_turn("app")
    await limiter.take_quota("app", 10_000)
    assert store.quotas == {}


async def test_limiter_waits_for_the_per_app_rate():
    limiter = Limiter(MemoryStore(), "fcm", vendor_rps=0, app_rps=20, app_daily_quota=0,
                      app_limits={"slow": {"rps": 1}}, utc_offset_h=0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(21):
        await limiter.wait_turn("app")
    assert loop.time() - started >= 0.04
    await limiter.wait_turn("slow")
    started = loop.time()
    await limiter.wait_turn("slow")
    assert loop.time() - started >= 0.9


async def test_credentials_are_cached_then_read_again_after_the_ttl():
    store = MemoryStore()
    await store.put_credentials("app", "fcm", {"key": "v1"})
    clock = Clock(0.0)
    cache = CredentialCache(store, "fcm", ttl_s=30, clock=clock)
    assert dict(await cache.get("app") or {}) == {"key": "v1"}
    await store.put_credentials("app", "fcm", {"key": "v2"})
    clock.now = 29.9
    assert dict(await cache.get("app") or {}) == {"key": "v1"}
    clock.now = 30.0
    assert dict(await cache.get("app") or {}) == {"key": "v2"}
    assert await cache.get("other") is None
    assert store.credential_reads == 3


async def test_concurrent_misses_share_one_read():
    store = MemoryStore()
    cache = CredentialCache(store, "fcm", ttl_s=30)
    await asyncio.gather(*(cache.get("app") for _ in range(10)))
    assert store.credential_reads == 1


def test_secrets_show_their_fields_only():
    secrets = Secrets({"client_id": "c", "client_secret": "hunter2"})
    assert dict(secrets) == {"client_id": "c", "client_secret": "hunter2"}
    assert "hunter2" not in repr(secrets) and "hunter2" not in f"{secrets}"
    assert "client_secret" in repr(secrets)
