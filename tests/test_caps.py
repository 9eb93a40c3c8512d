"""Frequency caps on the real Redis: the store's sliding window (``cap_take``), the policy
store, and the router's ``router.caps`` over it."""

from __future__ import annotations

import pytest

from herald.policy_store import CapTake
from herald.store import DeviceState, Presence
from proto import keys
from proto.envelopes import DeviceRecord
from proto.errors import DecodeError
from proto.events import Reason, Stage
from proto.message import Message
from proto.policy import AppPolicy, FrequencyCap, QuietHours, cap_subject
from router.caps import Caps, PolicyCache, cappable
from router.decide import Policy
from router.intake import Push

HOUR_MS = 3600 * 1000
T0 = 1_800_000_000_000


async def test_count_per_account(store, uid):
    app = f"app-{uid}"
    takes = [await store.cap_take(app, f"t{i}", ["alice", "bob"], 2, 3600, T0 + i)
             for i in range(3)]
    assert takes == [[True, True], [True, True], [False, False]]
    # A new account has its own window.
    assert await store.cap_take(app, "t3", ["carol", "alice"], 2, 3600, T0 + 3) == [True, False]


async def test_the_window_slides(store, redis_client, uid):
    app = f"app-{uid}"
    assert await store.cap_take(app, "t1", ["alice"], 2, 3600, T0) == [True]
    assert await store.cap_take(app, "t2", ["alice"], 2, 3600, T0 + HOUR_MS // 2) == [True]
    assert await store.cap_take(app, "t3", ["alice"], 2, 3600, T0 + HOUR_MS - 1) == [False]
    # t1 is a period old: it no longer counts, so t3 goes and takes its place ...
    assert await store.cap_take(app, "t3", ["alice"], 2, 3600, T0 + HOUR_MS) == [True]
    # ... and t4 waits for t2 to age out.
    assert await store.cap_take(app, "t4", ["alice"], 2, 3600, T0 + HOUR_MS + 1) == [False]
    assert await store.cap_take(app, "t4", ["alice"], 2, 3600, T0 + 3 * HOUR_MS // 2) == [True]
    window = keys.cap(app, "alice")
    assert await redis_client.zrange(window, 0, -1) == [b"t3", b"t4"]
    assert 3500 * 1000 < await redis_client.pttl(window) <= HOUR_MS


async def test_a_task_counts_once_per_account(store, redis_client, uid):
    app = f"app-{uid}"
    # Two shards of one task reach alice's devices, then the first shard is replayed.
    for now in (T0, T0 + 1, T0 + 2):
        assert await store.cap_take(app, "t1", ["alice"], 1, 3600, now) == [True]
    assert await redis_client.zrange(keys.cap(app, "alice"), 0, -1, withscores=True) == [
        (b"t1", float(T0))]
    assert await store.cap_take(app, "t2", ["alice"], 1, 3600, T0 + 3) == [False]
    # Refused, t2 was not counted: with room again it is taken.
    assert await store.cap_take(app, "t2", ["alice"], 2, 3600, T0 + 4) == [True]


async def test_apps_are_apart(store, uid):
    first, second = f"app-{uid}", f"other-{uid}"
    assert await store.cap_take(first, "t1", ["alice"], 1, 3600, T0) == [True]
    assert await store.cap_take(first, "t2", ["alice"], 1, 3600, T0) == [False]
    assert await store.cap_take(second, "t2", ["alice"], 1, 3600, T0) == [True]


async def test_empty_claims_touch_nothing(store, redis_client, uid):
    app = f"app-{uid}"
    assert await store.cap_take(app, "t1", [], 1, 3600, T0) == []
    assert await store.cap_take_many([]) == []
    claims = [CapTake(app, "t1", [], 1, 3600, T0), CapTake(app, "t1", ["alice"], 1, 3600, T0),
              CapTake(app, "t2", ["alice"], 1, 3600, T0)]
    # In order, in one round trip: the second claim sees the first.
    assert await store.cap_take_many(claims) == [[], [True], [False]]
    assert [key async for key in redis_client.scan_iter(match=f"herald:{{{app}}}:*")] == [
        keys.cap(app, "alice").encode()]


async def test_policies_are_stored_per_app(store, redis_client, uid):
    app, other = f"app-{uid}", f"other-{uid}"
    policy = AppPolicy(quiet_hours=QuietHours(start="22:00", end="07:00", tz="Europe/Berlin"),
                       frequency_cap=FrequencyCap(count=2, period_s=3600))
    assert await store.get_policy(app) is None
    await store.put_policy(app, policy)
    assert await store.get_policy(app) == policy
    assert await store.get_policies([app, other, app]) == [policy, None, policy]
    await redis_client.set(keys.policy(other), b"not json")
    assert await store.get_policies([other]) == [None]
    with pytest.raises(DecodeError):
        await store.get_policy(other)
    assert await store.delete_policy(app) is True
    assert await store.delete_policy(app) is False
    assert await store.get_policies([]) == []


def push(app: str, task: str, rids: list[str], **fields) -> Push:
    return Push(app, task, task, fields.pop("message", Message(title=task)), b"frame", rids, 0,
                0, Policy(0, can_wait=False), online=fields.pop("online", True), **fields)


def state(account: str, platform: str = "android") -> DeviceState:
    return DeviceState(Presence("n1", 1), DeviceRecord(platform=platform, account=account))


async def test_the_router_holds_back_the_devices_of_capped_accounts(store, redis_client, uid):
    app, free = f"app-{uid}", f"free-{uid}"
    await store.put_policy(app, AppPolicy(frequency_cap=FrequencyCap(count=1, period_s=3600)))
    caps = Caps(store, PolicyCache(store))
    alice = [state("alice"), state("alice", "ios")]
    first = await caps.hold([push(app, "t1", ["a1", "a2"])], alice)
    assert [p.registration_ids for p in first.pushes] == [["a1", "a2"]] and not first.events
    pushes = [push(app, "t2", ["a1", "a2", "b1", "x1"]),
              push(app, "t3", ["a1"], urgent=True),
              push(app, "t4", ["a1"], message=Message(kind="data", data={"k": "v"})),
              push(app, "t5", ["a1"], online=False),
              push(app, "t6", ["a1"], recall=True),
              push(free, "t7", ["f1"])]
    states = [*alice, state("bob"), state(""), *[state("alice")] * 4, state("frank")]
    capped = await caps.hold(pushes, states)
    assert [p.registration_ids for p in capped.pushes] == [
        ["b1", "x1"], ["a1"], ["a1"], ["a1"], ["a1"], ["f1"]]
    assert capped.states == [state("bob"), state(""), *[state("alice")] * 4, state("frank")]
    failed = [e for e in capped.events if e.stage is Stage.FAILED]
    assert [(e.task_id, e.registration_ids, e.reason) for e in failed] == [
        ("t2", ["a1", "a2"], Reason.FREQUENCY_CAPPED)]
    targeted = {e.platform: e.registration_ids for e in capped.events
                if e.stage is Stage.TARGETED}
    assert targeted == {"android": ["a1"], "ios": ["a2"]}
    # bob and the device without an account were counted; the exempt pushes were not.
    for subject, tasks in (("alice", [b"t1"]), ("bob", [b"t2"]), (cap_subject("", "x1"), [b"t2"]),
                           ("frank", [])):
        assert await redis_client.zrange(keys.cap(app, subject), 0, -1) == tasks, subject


async def test_cappable():
    assert cappable(push("a", "t", ["r"]))
    assert not cappable(push("a", "t", ["r"], urgent=True))
    assert not cappable(push("a", "t", ["r"], recall=True))
    assert not cappable(push("a", "t", ["r"], online=False))
    assert not cappable(push("a", "t", ["r"], message=Message(kind="data", data={"k": "v"})))


async def test_the_policy_cache_reads_once_per_ttl(store, uid):
    app = f"app-{uid}"
    now = [0.0]
    cache = PolicyCache(store, ttl_s=2.0, clock=lambda: now[0])
    assert await cache.policies([app]) == {app: None}
    policy = AppPolicy(frequency_cap=FrequencyCap(count=1, period_s=60))
    await store.put_policy(app, policy)
    now[0] = 1.9
    assert await cache.policies([app]) == {app: None}
    now[0] = 2.0
    assert await cache.policies([app, app]) == {app: policy}
