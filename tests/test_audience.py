"""RedisAudience on the real Redis: accounts, tags, attributes, automatic tags, resolution, every
limit (a refused call stores nothing), tenancy, and the issue's acceptance test against a
brute-force evaluation over 10,000 accounts."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import msgspec
import pytest
from redis.crc import key_slot

from herald.redis_audience import RedisAudience
from herald.redis_store import RedisStore
from proto import keys
from proto.audience import (
    AttributeCondition,
    AttributeIs,
    Audience,
    AudienceError,
    AudienceLimits,
    Code,
    DeviceCondition,
    ResolvedAudience,
    TagCondition,
    Unit,
)
from proto.envelopes import DeviceRecord
from tests.harness import REDIS

DAY_MS = 24 * 3600 * 1000
NOW = 1_700_000_000_000


@pytest.fixture
def store(redis_client):
    return RedisAudience(redis_client)


@pytest.fixture
def app_id(uid):
    return f"aud-{uid}"


async def dump(redis_client, app_id: str) -> dict[bytes, object]:
    """Every key of the app and what it holds."""
    readers: dict[bytes, Callable[[bytes], Awaitable[object]]] = {
        b"set": redis_client.smembers, b"hash": redis_client.hgetall, b"string": redis_client.get,
        b"zset": lambda key: redis_client.zrange(key, 0, -1, withscores=True)}
    state = {}
    async for key in redis_client.scan_iter(match=f"herald:{{{app_id}}}:*", count=1000):
        state[key] = await readers[await redis_client.type(key)](key)
    return state


async def drop(redis_client, app_id: str) -> None:
    found = [key async for key in redis_client.scan_iter(match=f"herald:{{{app_id}}}:*",
                                                         count=1000)]
    for i in range(0, len(found), 1000):
        await redis_client.unlink(*found[i:i + 1000])


async def devices_of(store: RedisAudience, app_id: str, resolved: ResolvedAudience,
                     count: int = 100) -> set[str]:
    """Every device of a resolved audience, page by page as a fan-out reads it."""
    devices: set[str] = set()
    cursor = 0
    while True:
        cursor, page = await store.scan_devices(app_id, resolved, cursor, count)
        devices.update(page)
        if cursor == 0:
            return devices


async def reach(store, app_id, audience: Audience, now_ms: int = NOW,
                count: int = 100) -> set[str]:
    resolved = await store.resolve(app_id, audience, now_ms)
    try:
        return await devices_of(store, app_id, resolved, count)
    finally:
        await store.discard(app_id, resolved)


def bind(redis_client, app_id, account, *rids):
    """Bind devices the way ``Store.bind_account`` lays it out (its account device set)."""
    return redis_client.sadd(keys.account(app_id, account), *rids)


# Accounts and devices


async def test_import_accounts_counts_new_ones_and_feeds_not_only_conditions(store, redis_client,
                                                                           app_id):
    assert await store.import_accounts(app_id, ["a", "b", "b"]) == 2
    assert await store.import_accounts(app_id, ["b", "c"]) == 1
    assert await redis_client.smembers(keys.all_accounts(app_id)) == {b"a", b"b", b"c"}
    await store.add_tags(app_id, ["a"], ["vip"])
    await bind(redis_client, app_id, "b", "db")
    await bind(redis_client, app_id, "c", "dc")
    assert await reach(store, app_id, Audience(tags=TagCondition(not_=["vip"]))) == {"db", "dc"}


async def test_account_pushes_reach_every_bound_device_as_bindings_change(store, redis_client,
                                                                        app_id):
    devices = RedisStore(REDIS)
    try:
        for rid, account in [("d1", "alice"), ("d2", "alice"), ("d3", "bob")]:
            await devices.bind_account(app_id, rid, account)
        audience = Audience(accounts=["alice", "nobody"])
        assert await reach(store, app_id, audience) == {"d1", "d2"}
        await devices.bind_account(app_id, "d2", "bob")
        assert await reach(store, app_id, audience) == {"d1"}
    finally:
        await devices.close()


async def test_observe_device_indexes_automatic_tags_and_moves_them_on_change(store, redis_client,
                                                                            app_id):
    record = DeviceRecord(platform="Android", vendor="huawei", app_version="1.0",
                          locale="zh_CN", account="alice")
    await store.observe_device(app_id, "d1", record, NOW)
    assert await redis_client.smembers(keys.all_devices(app_id)) == {b"d1"}
    assert await redis_client.smembers(keys.all_accounts(app_id)) == {b"alice"}
    for kind, value in [("platform", "android"), ("vendor", "huawei"), ("app_version", "1.0"),
                        ("locale", "zh-CN"), ("country", "CN")]:
        assert await redis_client.smembers(keys.auto_tag(app_id, kind, value)) == {b"d1"}
    upgraded = msgspec.structs.replace(record, app_version="2.0", locale="", vendor="")
    await store.observe_device(app_id, "d1", upgraded, NOW)
    assert not await redis_client.exists(keys.auto_tag(app_id, "app_version", "1.0"),
                                         keys.auto_tag(app_id, "locale", "zh-CN"),
                                         keys.auto_tag(app_id, "country", "CN"),
                                         keys.auto_tag(app_id, "vendor", "huawei"))
    assert await redis_client.smembers(keys.auto_tag(app_id, "app_version", "2.0")) == {b"d1"}
    assert await reach(store, app_id, Audience(device=DeviceCondition(platform=["ANDROID"]))) \
        == {"d1"}


async def test_first_and_last_seen_hold_the_extremes_whatever_the_order(store, redis_client,
                                                                      app_id):
    record = DeviceRecord(platform="ios")
    for at in [NOW - 5 * DAY_MS, NOW - 9 * DAY_MS, NOW - 2 * DAY_MS, NOW - 3 * DAY_MS]:
        await store.observe_device(app_id, "d1", record, at)
    assert await redis_client.zscore(keys.first_seen(app_id), "d1") == NOW - 9 * DAY_MS
    assert await redis_client.zscore(keys.last_seen(app_id), "d1") == NOW - 2 * DAY_MS


async def test_new_and_active_windows_count_from_the_injected_now(store, app_id):
    # (first seen, last seen) in days before NOW
    seen = {"fresh": (0, 0), "week": (7, 1), "old_active": (40, 2), "old_idle": (40, 30)}
    for rid, (first, last) in seen.items():
        await store.observe_device(app_id, rid, DeviceRecord(platform="ios"),
                                   NOW - first * DAY_MS)
        await store.observe_device(app_id, rid, DeviceRecord(platform="ios"), NOW - last * DAY_MS)

    async def window(now_ms=NOW, **days):
        return await reach(store, app_id, Audience(device=DeviceCondition(**days)), now_ms)

    assert await window(new_within_days=1) == {"fresh"}
    assert await window(new_within_days=7) == {"fresh", "week"}  # the boundary is inclusive
    assert await window(new_within_days=6) == {"fresh"}
    assert await window(active_within_days=2) == {"fresh", "week", "old_active"}
    assert await window(active_within_days=30) == set(seen)
    assert await window(new_within_days=30, active_within_days=1) == {"fresh", "week"}
    assert await window(NOW + 10 * DAY_MS, active_within_days=10) == {"fresh"}


# Tags


async def test_tags_add_list_remove_and_remove_all(store, redis_client, app_id):
    await store.add_tags(app_id, ["a", "b"], ["vip", "新用户"])
    await store.add_tags(app_id, ["b"], ["beta", "vip"])
    assert await store.tags(app_id, ["a", "b", "c"]) == {
        "a": ["vip", "新用户"], "b": ["beta", "vip", "新用户"], "c": []}
    assert await redis_client.smembers(keys.tag(app_id, "vip")) == {b"a", b"b"}
    assert await redis_client.smembers(keys.all_accounts(app_id)) == {b"a", b"b"}
    await store.remove_tags(app_id, ["a", "b"], ["vip", "never-there"])
    assert await store.tags(app_id, ["a", "b"]) == {"a": ["新用户"], "b": ["beta", "新用户"]}
    assert not await redis_client.exists(keys.tag(app_id, "vip"))
    await store.remove_all_tags(app_id, ["b", "c"])
    assert await store.tags(app_id, ["a", "b"]) == {"a": ["新用户"], "b": []}
    assert not await redis_client.exists(keys.tag(app_id, "beta"), keys.account_tags(app_id, "b"))
    assert await redis_client.smembers(keys.tag(app_id, "新用户")) == {b"a"}


async def test_an_account_takes_up_to_100_tags_and_readding_one_is_free(store, app_id):
    hundred = [f"t{i}" for i in range(100)]
    await store.add_tags(app_id, ["a"], hundred)
    await store.add_tags(app_id, ["a"], ["t0", "t99"])
    assert len((await store.tags(app_id, ["a"]))["a"]) == 100


async def test_concurrent_tag_writers_never_pass_the_limit(redis_client, app_id):
    store = RedisAudience(redis_client, AudienceLimits(tags_per_account=10))
    results = await asyncio.gather(*(store.add_tags(app_id, ["a"], [f"t{i}"]) for i in range(30)),
                                   return_exceptions=True)
    refused = [r for r in results if isinstance(r, AudienceError)]
    assert all(r.code in (Code.TOO_MANY_TAGS, Code.CONFLICT) for r in refused)
    tags = (await store.tags(app_id, ["a"]))["a"]
    assert len(tags) == len(results) - len(refused) <= 10
    indexed = {tag for tag in (f"t{i}" for i in range(30))
               if await redis_client.sismember(keys.tag(app_id, tag), "a")}
    assert indexed == set(tags)


# Attributes


async def test_attributes_declare_set_get_remove_and_index(store, redis_client, app_id):
    await store.declare_attributes(app_id, ["level", "city"])
    await store.declare_attributes(app_id, ["city", "gender"])
    assert await store.attributes(app_id) == ["city", "gender", "level"]
    await store.set_attributes(app_id, {"a": {"level": "gold", "city": "New York"},
                                        "b": {"level": "gold"}})
    assert await store.get_attributes(app_id, ["a", "b", "c"]) == {
        "a": {"level": "gold", "city": "New York"}, "b": {"level": "gold"}, "c": {}}
    assert await redis_client.smembers(keys.attribute(app_id, "level", "gold")) == {b"a", b"b"}
    await store.set_attributes(app_id, {"a": {"level": "silver"}})
    assert await redis_client.smembers(keys.attribute(app_id, "level", "gold")) == {b"b"}
    assert await redis_client.smembers(keys.attribute(app_id, "level", "silver")) == {b"a"}
    await store.remove_attributes(app_id, ["a", "b"], ["level"])
    assert await store.get_attributes(app_id, ["a", "b"]) == {"a": {"city": "New York"}, "b": {}}
    assert not await redis_client.exists(keys.attribute(app_id, "level", "gold"),
                                         keys.attribute(app_id, "level", "silver"))
    assert await redis_client.smembers(keys.all_accounts(app_id)) == {b"a", b"b"}


async def test_an_app_declares_up_to_10_attributes(store, app_id):
    await store.declare_attributes(app_id, [f"a{i}" for i in range(10)])
    await store.declare_attributes(app_id, ["a0"])
    assert len(await store.attributes(app_id)) == 10


# Every limit: a clear error, and nothing stored


async def seed(store, redis_client, app_id):
    """An app with data near the limits, for the breach tests to leave unchanged."""
    await store.add_tags(app_id, ["full"], [f"t{i}" for i in range(99)])
    await store.add_tags(app_id, ["other"], ["vip"])
    await store.declare_attributes(app_id, [f"a{i}" for i in range(9)])
    await store.set_attributes(app_id, {"other": {"a0": "x"}})
    await store.import_accounts(app_id, ["quiet"])


ACCOUNTS_101 = [f"u{i}" for i in range(101)]
BREACHES = {
    "import over 1000": (lambda s, a: s.import_accounts(a, [f"u{i}" for i in range(1001)]),
                         Code.TOO_MANY_ACCOUNTS),
    "import bad id": (lambda s, a: s.import_accounts(a, ["fine", "not fine"]), Code.BAD_ACCOUNT),
    "import none": (lambda s, a: s.import_accounts(a, []), Code.EMPTY),
    "tags over 100 accounts": (lambda s, a: s.add_tags(a, ACCOUNTS_101, ["x"]),
                               Code.TOO_MANY_ACCOUNTS),
    "tags over 100 in one call": (
        lambda s, a: s.add_tags(a, ["new"], [f"n{i}" for i in range(101)]), Code.TOO_MANY_TAGS),
    "account over 100 tags": (lambda s, a: s.add_tags(a, ["other", "full"], ["n1", "n2"]),
                              Code.TOO_MANY_TAGS),
    "tag over 50 bytes": (lambda s, a: s.add_tags(a, ["other"], ["ok", "标" * 17]),
                          Code.TAG_TOO_LONG),
    "tag with a space": (lambda s, a: s.add_tags(a, ["other"], ["ok", "two words"]), Code.BAD_TAG),
    "tag on a bad account": (lambda s, a: s.add_tags(a, ["other", "a:b"], ["x"]),
                             Code.BAD_ACCOUNT),
    "no tags": (lambda s, a: s.add_tags(a, ["other"], []), Code.EMPTY),
    "remove bad tag": (lambda s, a: s.remove_tags(a, ["other"], ["vip", ""]), Code.BAD_TAG),
    "remove over 100 accounts": (lambda s, a: s.remove_tags(a, ACCOUNTS_101, ["vip"]),
                                 Code.TOO_MANY_ACCOUNTS),
    "remove all over 100 accounts": (lambda s, a: s.remove_all_tags(a, ACCOUNTS_101),
                                     Code.TOO_MANY_ACCOUNTS),
    "list over 100 accounts": (lambda s, a: s.tags(a, ACCOUNTS_101), Code.TOO_MANY_ACCOUNTS),
    "app over 10 attributes": (lambda s, a: s.declare_attributes(a, ["a8", "b1", "b2"]),
                               Code.TOO_MANY_ATTRIBUTES),
    "attribute name": (lambda s, a: s.declare_attributes(a, ["ok", "9lives"]),
                       Code.BAD_ATTRIBUTE_NAME),
    "attribute name over 50 bytes": (lambda s, a: s.declare_attributes(a, ["n" * 51]),
                                     Code.ATTRIBUTE_TOO_LONG),
    "undeclared attribute": (lambda s, a: s.set_attributes(a, {"other": {"a1": "y"},
                                                               "quiet": {"zz": "y"}}),
                             Code.UNKNOWN_ATTRIBUTE),
    "attribute value over 50 bytes": (lambda s, a: s.set_attributes(a, {"other": {"a0": "v" * 51}}),
                                      Code.ATTRIBUTE_TOO_LONG),
    "attribute value padded": (lambda s, a: s.set_attributes(a, {"other": {"a0": "y "}}),
                               Code.BAD_ATTRIBUTE_VALUE),
    "attributes over 100 accounts": (lambda s, a: s.set_attributes(
        a, {u: {"a0": "y"} for u in ACCOUNTS_101}), Code.TOO_MANY_ACCOUNTS),
    "no attribute values": (lambda s, a: s.set_attributes(a, {"other": {"a0": "y"}, "quiet": {}}),
                            Code.EMPTY),
    "get over 100 accounts": (lambda s, a: s.get_attributes(a, ACCOUNTS_101),
                              Code.TOO_MANY_ACCOUNTS),
    "remove undeclared attribute": (lambda s, a: s.remove_attributes(a, ["other"], ["a0", "zz"]),
                                    Code.UNKNOWN_ATTRIBUTE),
    "resolve undeclared attribute": (lambda s, a: s.resolve(a, Audience(
        attributes=AttributeCondition(or_=[AttributeIs(name="zz", value="1")])), NOW),
        Code.UNKNOWN_ATTRIBUTE),
    "resolve invalid audience": (lambda s, a: s.resolve(a, Audience(), NOW),
                                 Code.INVALID_AUDIENCE),
}


@pytest.mark.parametrize("name", list(BREACHES))
async def test_every_breach_is_a_clear_error_and_stores_nothing(store, redis_client, app_id, name):
    call, code = BREACHES[name]
    await seed(store, redis_client, app_id)
    before = await dump(redis_client, app_id)
    with pytest.raises(AudienceError) as caught:
        await call(store, app_id)
    assert caught.value.code is code
    assert caught.value.reason
    assert await dump(redis_client, app_id) == before


async def test_store_limits_are_configurable(redis_client, app_id):
    store = RedisAudience(redis_client, AudienceLimits(
        tags_per_account=2, tag_bytes=3, accounts_per_call=2, accounts_per_import=3,
        attributes_per_app=1, attribute_bytes=2))
    for call, code in [
        (store.add_tags(app_id, ["a"], ["x", "y", "z"]), Code.TOO_MANY_TAGS),
        (store.add_tags(app_id, ["a"], ["long"]), Code.TAG_TOO_LONG),
        (store.add_tags(app_id, ["a", "b", "c"], ["x"]), Code.TOO_MANY_ACCOUNTS),
        (store.import_accounts(app_id, ["a", "b", "c", "d"]), Code.TOO_MANY_ACCOUNTS),
        (store.declare_attributes(app_id, ["p", "q"]), Code.TOO_MANY_ATTRIBUTES),
        (store.declare_attributes(app_id, ["abc"]), Code.ATTRIBUTE_TOO_LONG),
    ]:
        with pytest.raises(AudienceError) as caught:
            await call
        assert caught.value.code is code
    assert await dump(redis_client, app_id) == {}
    await store.add_tags(app_id, ["a", "b"], ["x", "yz"])
    await store.declare_attributes(app_id, ["p"])
    assert await store.import_accounts(app_id, ["a", "b", "c"]) == 1


# Resolution


async def test_resolved_sets_expire_and_leave_no_intermediates(store, redis_client, app_id):
    await store.add_tags(app_id, ["a"], ["x", "y"])
    await store.observe_device(app_id, "d1", DeviceRecord(platform="ios"), NOW)
    await bind(redis_client, app_id, "a", "d1")
    audience = Audience(tags=TagCondition(or_=["x", "y"]),
                        device=DeviceCondition(platform=["ios", "android"], new_within_days=3))
    resolved = await store.resolve(app_id, audience, NOW, ttl_s=600)
    assert resolved == ResolvedAudience(Unit.ACCOUNTS, resolved.token, filtered=True)
    main, narrow = keys.audience(app_id, resolved.token), keys.audience_devices(app_id,
                                                                                resolved.token)
    assert 0 < await redis_client.ttl(main) <= 600
    assert 0 < await redis_client.ttl(narrow) <= 600
    found = [k for k in await dump(redis_client, app_id) if k.startswith(main.encode())]
    assert sorted(found) == sorted([main.encode(), narrow.encode()])
    assert await devices_of(store, app_id, resolved) == {"d1"}
    await store.discard(app_id, resolved)
    assert not await redis_client.exists(main, narrow)


async def test_all_reads_the_live_device_set_and_discard_keeps_it(store, redis_client, app_id):
    await store.add_device(app_id, "d1")
    await store.observe_device(app_id, "d2", DeviceRecord(), NOW)
    resolved = await store.resolve(app_id, Audience(all=True), NOW)
    assert resolved == ResolvedAudience(Unit.DEVICES)
    assert await devices_of(store, app_id, resolved) == {"d1", "d2"}
    await store.discard(app_id, resolved)
    assert await redis_client.scard(keys.all_devices(app_id)) == 2


async def test_registration_id_lists_are_kept_as_given(store, app_id):
    await store.add_device(app_id, "known")
    audience = Audience(registration_ids=["known", "unknown"])
    resolved = await store.resolve(app_id, audience, NOW)
    assert resolved.unit is Unit.DEVICES
    assert await devices_of(store, app_id, resolved) == {"known", "unknown"}


async def test_scan_devices_pages_through_large_audiences(store, redis_client, app_id):
    accounts = [f"u{i}" for i in range(600)]
    for i in range(0, 600, 100):
        await store.add_tags(app_id, accounts[i:i + 100], ["all"])
    async with redis_client.pipeline(transaction=False) as pipe:
        for i, account in enumerate(accounts[1::3] + accounts[2::3]):
            pipe.sadd(keys.account(app_id, account), *(f"d{i}-{j}" for j in range(1 + i % 2)))
        await pipe.execute()
    resolved = await store.resolve(app_id, Audience(tags=TagCondition(and_=["all"])), NOW)
    pages, cursor, seen = 0, 0, set()
    while True:
        cursor, page = await store.scan_devices(app_id, resolved, cursor, 50)
        pages += 1
        seen.update(page)
        if cursor == 0:
            break
    assert pages > 5
    assert seen == {f"d{i}-{j}" for i in range(400) for j in range(1 + i % 2)}


# Tenancy


async def test_apps_never_mix_even_with_the_same_names(store, redis_client, uid):
    one, two = f"one-{uid}", f"two-{uid}"
    for app_id, rid in [(one, "d-one"), (two, "d-two")]:
        await store.add_tags(app_id, ["alice"], ["vip"])
        await store.declare_attributes(app_id, ["level"])
        await store.set_attributes(app_id, {"alice": {"level": "gold"}})
        await store.observe_device(app_id, rid, DeviceRecord(platform="ios", account="alice"),
                                   NOW)
        await bind(redis_client, app_id, "alice", rid)
    await store.add_tags(two, ["bob"], ["vip"])
    await store.remove_all_tags(one, ["alice"])
    assert await store.tags(one, ["alice", "bob"]) == {"alice": [], "bob": []}
    assert await store.tags(two, ["alice", "bob"]) == {"alice": ["vip"], "bob": ["vip"]}
    for audience in [Audience(all=True), Audience(accounts=["alice"]),
                     Audience(attributes=AttributeCondition(and_=[AttributeIs(name="level",
                                                                              value="gold")])),
                     Audience(device=DeviceCondition(platform=["ios"]))]:
        assert await reach(store, one, audience) == {"d-one"}
        assert await reach(store, two, audience) == {"d-two"}
    assert await reach(store, one, Audience(tags=TagCondition(and_=["vip"]))) == set()
    # An audience resolved for one app names nothing in another.
    resolved = await store.resolve(two, Audience(tags=TagCondition(and_=["vip"])), NOW)
    assert await devices_of(store, one, resolved) == set()
    assert await devices_of(store, two, resolved) == {"d-two"}
    # Every key of an app sits in the app's one Redis Cluster slot.
    for app_id in (one, two):
        assert {key_slot(k) for k in await dump(redis_client, app_id)} == {
            key_slot(f"{{{app_id}}}".encode())}


# Acceptance: resolution equals a brute-force evaluation over 10,000 accounts

VOCABULARY = {"vip": 0.1, "beta": 0.05, "新用户": 0.3, "churn-risk": 0.2, "gamer": 0.4,
              "sports": 0.25, "music": 0.35, "news": 0.5, "shopper": 0.15, "traveler": 0.08,
              "parent": 0.12, "student": 0.18}
ATTRIBUTES = {"gender": (0.9, ["f", "m"]), "level": (0.7, ["1", "2", "3", "4"]),
              "city": (0.5, ["New York", "北京", "Paris", "Lagos", "Lima"])}
# (as the device sends it, canonical platform)
PLATFORMS = [("Android", "android"), ("android", "android"), ("iOS", "ios"),
             ("harmony", "harmony")]
VENDORS = ["huawei", "xiaomi", "apple", "", "oppo"]
VERSIONS = ["1.0", "1.1", "2.0"]
# (as the device sends it, canonical locale, country)
LOCALES = [("en_us", "en-US", "US"), ("zh-Hans-CN", "zh-Hans-CN", "CN"), ("fr-FR", "fr-FR", "FR"),
           ("es-419", "es-419", ""), ("", "", ""), ("en-GB", "en-GB", "GB")]


@dataclass
class Device:
    rid: str
    auto: dict[str, str]
    first: int
    last: int


@dataclass
class Population:
    """What was stored, kept in Python to evaluate conditions by brute force."""

    app_id: str
    tags: dict[str, set[str]] = field(default_factory=dict)
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    devices: dict[str, list[Device]] = field(default_factory=dict)
    unbound: list[Device] = field(default_factory=list)

    def every_device(self) -> list[Device]:
        return [d for ds in self.devices.values() for d in ds] + self.unbound


def random_device(rng: random.Random, rid: str) -> tuple[Device, DeviceRecord]:
    platform, canonical = rng.choice(PLATFORMS)
    vendor, version = rng.choice(VENDORS), rng.choice(VERSIONS)
    locale, canonical_locale, country = rng.choice(LOCALES)
    auto = {"platform": canonical, "vendor": vendor, "app_version": version,
            "locale": canonical_locale, "country": country}
    first = NOW - rng.randrange(60 * DAY_MS)
    # Half the devices were seen once only.
    last = rng.choice([first, rng.randrange(first, NOW + 1)])
    record = DeviceRecord(platform=platform, vendor=vendor, app_version=version, locale=locale)
    return Device(rid, {k: v for k, v in auto.items() if v}, first, last), record


async def gather_in_batches(calls: list[Awaitable[object]], size: int = 100) -> None:
    for i in range(0, len(calls), size):
        await asyncio.gather(*calls[i:i + size])


@pytest.fixture(scope="module")
async def population(redis_client) -> Population:
    rng = random.Random(20240604)
    store = RedisAudience(redis_client)
    pop = Population(f"pop-{uuid.uuid4().hex[:10]}")
    app_id = pop.app_id
    started = time.monotonic()
    accounts = [f"user{i}" for i in range(10_000)]
    for i in range(0, len(accounts), 1000):
        await store.import_accounts(app_id, accounts[i:i + 1000])
    await store.declare_attributes(app_id, list(ATTRIBUTES))
    observations = []
    for n, account in enumerate(accounts):
        pop.tags[account] = {t for t, p in VOCABULARY.items() if rng.random() < p}
        pop.attributes[account] = {name: rng.choice(values)
                                   for name, (p, values) in ATTRIBUTES.items() if rng.random() < p}
        pop.devices[account] = []
        for j in range(rng.choice([0, 1, 1, 1, 2, 2, 3])):
            device, record = random_device(rng, f"d{n}-{j}")
            pop.devices[account].append(device)
            observations.append((device, record))
    for k in range(1000):
        device, record = random_device(rng, f"loose{k}")
        pop.unbound.append(device)
        observations.append((device, record))
    # Accounts of one tag's call never overlap, so calls of one tag run concurrently.
    for tag in VOCABULARY:
        having = [a for a in accounts if tag in pop.tags[a]]
        await gather_in_batches([store.add_tags(app_id, having[i:i + 100], [tag])
                                 for i in range(0, len(having), 100)])
    given = [a for a in accounts if pop.attributes[a]]
    await gather_in_batches([store.set_attributes(app_id, {a: pop.attributes[a]
                                                           for a in given[i:i + 100]})
                             for i in range(0, len(given), 100)])
    await gather_in_batches([store.observe_device(app_id, d.rid, r, d.first)
                             for d, r in observations])
    await gather_in_batches([store.observe_device(app_id, d.rid, r, d.last)
                             for d, r in observations if d.last != d.first])
    async with redis_client.pipeline(transaction=False) as pipe:
        for account, devices in pop.devices.items():
            if devices:
                pipe.sadd(keys.account(app_id, account), *(d.rid for d in devices))
        await pipe.execute()
    print(f"population of {len(accounts)} accounts and {len(observations)} devices stored in "
          f"{time.monotonic() - started:.1f} s")
    yield pop
    await drop(redis_client, app_id)


def brute_force(pop: Population, audience: Audience) -> set[str]:
    """The devices an audience means, from the Python copy of the population."""
    if audience.all:
        return {d.rid for d in pop.every_device()}
    if audience.registration_ids:
        return set(audience.registration_ids)
    if audience.accounts:
        return {d.rid for a in audience.accounts for d in pop.devices.get(a, [])}

    def account_matches(account: str) -> bool:
        have, values = pop.tags[account], pop.attributes[account]
        tags, attributes = audience.tags, audience.attributes
        if tags and not (set(tags.and_) <= have and (not tags.or_ or have & set(tags.or_))
                         and not have & set(tags.not_)):
            return False
        return not attributes or (
            all(values.get(p.name) == p.value for p in attributes.and_)
            and (not attributes.or_ or any(values.get(p.name) == p.value
                                           for p in attributes.or_)))

    def device_matches(device: Device) -> bool:
        condition = audience.device
        if condition is None:
            return True
        for kind, canonical in CANONICAL.items():
            wanted = getattr(condition, kind)
            if wanted and device.auto.get(kind) not in {canonical(v) for v in wanted}:
                return False
        new, active = condition.new_within_days, condition.active_within_days
        return ((new is None or device.first >= NOW - new * DAY_MS)
                and (active is None or device.last >= NOW - active * DAY_MS))

    if audience.tags or audience.attributes:
        return {d.rid for a, ds in pop.devices.items() if account_matches(a)
                for d in ds if device_matches(d)}
    return {d.rid for d in pop.every_device() if device_matches(d)}


# How a condition's spelling maps to the stored one, written out apart from proto.audience.
CANONICAL: dict[str, Callable[[str], str]] = {
    "platform": str.lower, "vendor": str.lower, "app_version": str,
    "locale": {raw: canonical for raw, canonical, _ in LOCALES if raw}.get,
    "country": str.upper,
}


def random_audience(rng: random.Random, pop: Population) -> Audience:
    kind = rng.choices(["filter", "all", "accounts", "registration_ids"], [90, 2, 4, 4])[0]
    if kind == "all":
        return Audience(all=True)
    if kind == "accounts":
        return Audience(accounts=rng.sample(sorted(pop.devices), rng.randint(1, 500)))
    if kind == "registration_ids":
        rids = [d.rid for d in rng.sample(pop.every_device(), rng.randint(1, 999))]
        return Audience(registration_ids=[*rids, "no-such-device"])
    parts: dict[str, object] = {}
    while not parts:
        if rng.random() < 0.7:
            parts["tags"] = random_tags(rng)
        if rng.random() < 0.5:
            parts["attributes"] = random_attributes(rng)
        if rng.random() < 0.4:
            parts["device"] = random_device_condition(rng)
    return Audience(**parts)


def random_tags(rng: random.Random) -> TagCondition:
    vocabulary = list(VOCABULARY)
    while True:
        required = rng.sample(vocabulary, rng.choice([0, 0, 1, 1, 2]))
        excluded = rng.sample([t for t in vocabulary if t not in required], rng.choice([0, 1, 2]))
        either = rng.sample(vocabulary, rng.choice([0, 1, 2, 3]))
        if required or excluded or either:
            return TagCondition(and_=required, or_=either, not_=excluded)


def random_pair(rng: random.Random) -> AttributeIs:
    name = rng.choice(list(ATTRIBUTES))
    # Now and then a value no account has.
    return AttributeIs(name=name, value=rng.choice([*ATTRIBUTES[name][1], "unheard-of"]))


def random_attributes(rng: random.Random) -> AttributeCondition:
    while True:
        condition = AttributeCondition(
            and_=[random_pair(rng) for _ in range(rng.choice([0, 1, 2]))],
            or_=[random_pair(rng) for _ in range(rng.choice([0, 2, 3]))])
        if condition.and_ or condition.or_:
            return condition


def random_device_condition(rng: random.Random) -> DeviceCondition:
    def some(values: list[str]) -> list[str]:
        return rng.sample(values, rng.choice([0, 0, 1, 2]))

    while True:
        condition = DeviceCondition(
            platform=some([raw for raw, _ in PLATFORMS]),
            vendor=some(["HUAWEI", "xiaomi", "apple"]),
            app_version=some(VERSIONS), locale=some([raw for raw, _, _ in LOCALES if raw]),
            country=some(["us", "CN", "FR", "GB"]),
            new_within_days=rng.choice([None, None, 1, 7, 30]),
            active_within_days=rng.choice([None, None, 1, 3, 14]))
        if condition != DeviceCondition():
            return condition


async def test_resolution_matches_brute_force_over_10000_accounts(store, population):
    rng = random.Random(7)
    started = time.monotonic()
    sizes = []
    for _ in range(200):
        audience = random_audience(rng, population)
        expected = brute_force(population, audience)
        got = await reach(store, population.app_id, audience, count=1000)
        assert got == expected, json.dumps(msgspec.to_builtins(audience), ensure_ascii=False)
        sizes.append(len(expected))
    # The conditions are not all trivial: empty, small and large audiences all occur.
    assert min(sizes) == 0
    assert max(sizes) > 5000
    assert len({s for s in sizes if 0 < s < 1000}) > 20
    print(f"200 audiences resolved and scanned in {time.monotonic() - started:.1f} s")
