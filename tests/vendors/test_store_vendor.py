"""RedisStore's vendor methods on the real Redis: credentials, token removal, daily quotas."""

from __future__ import annotations

import asyncio

import pytest

from proto import keys
from proto.envelopes import DeviceRecord
from proto.errors import DecodeError


async def test_credentials_are_stored_per_app_and_vendor_and_replaced_whole(store, uid):
    app = f"app-{uid}"
    assert await store.get_credentials(app, "huawei") is None
    await store.put_credentials(app, "huawei", {"client_id": "1", "client_secret": "s"})
    await store.put_credentials(app, "huawei", {"client_id": "2"})
    assert await store.get_credentials(app, "huawei") == {"client_id": "2"}
    assert await store.get_credentials(app, "honor") is None


async def test_unreadable_credentials_raise_without_quoting_them(store, redis_client, uid):
    app = f"app-{uid}"
    await redis_client.set(keys.credentials(app, "fcm"), b'{"private_key": ["s3cret"]}')
    with pytest.raises(DecodeError) as err:
        await store.get_credentials(app, "fcm")
    assert "s3cret" not in err.value.reason


async def test_an_invalid_token_is_forgotten_only_while_it_is_the_devices(store, uid):
    app = f"app-{uid}"
    record = DeviceRecord(platform="android", vendor="fcm", vendor_token="old", account="u1")
    await store.put_device(app, "d1", record)
    assert not await store.forget_vendor_token(app, "d1", "other")
    assert not await store.forget_vendor_token(app, "d2", "old")
    assert await store.forget_vendor_token(app, "d1", "old")
    assert await store.get_device(app, "d1") == DeviceRecord(platform="android", account="u1")
    assert not await store.forget_vendor_token(app, "d1", "old")


async def test_concurrent_removals_of_one_token_clear_it_once(store, uid):
    app = f"app-{uid}"
    await store.put_device(app, "d1", DeviceRecord(vendor="apns", vendor_token="t"))
    cleared = await asyncio.gather(*(store.forget_vendor_token(app, "d1", "t")
                                     for _ in range(10)))
    assert sorted(cleared) == [False] * 9 + [True]


async def test_the_daily_quota_counts_until_the_limit_and_expires(store, redis_client, uid):
    app = f"app-{uid}"
    assert await store.take_daily_quota(app, "vivo", "2025-01-01", 3, 5)
    assert not await store.take_daily_quota(app, "vivo", "2025-01-01", 3, 5)
    assert await store.take_daily_quota(app, "vivo", "2025-01-01", 2, 5)
    assert await store.take_daily_quota(app, "vivo", "2025-01-02", 5, 5)
    assert await store.take_daily_quota(app, "oppo", "2025-01-01", 5, 5)
    key = keys.daily_quota(app, "vivo", "2025-01-01")
    assert int(await redis_client.get(key)) == 5
    assert 86400 < await redis_client.ttl(key) <= 2 * 86400
