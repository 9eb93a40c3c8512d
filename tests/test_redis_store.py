"""RedisStore on the real Redis: epochs, presence ownership, batched lookups, node inboxes."""

from __future__ import annotations

import pytest

from herald.redis_store import RedisStore
from herald.store import Held, Presence
from proto import keys
from proto.envelopes import DeviceRecord
from tests.harness import REDIS


@pytest.fixture
async def store(redis_client):
    store = RedisStore(REDIS)
    yield store
    await store.close()


async def test_each_connection_gets_a_higher_epoch_and_takes_presence(store, uid):
    app, rid = f"app-{uid}", "d1"
    record = DeviceRecord("android", "sandbox", "tok")
    first = await store.connect_device(app, rid, "n1", record, 30)
    second = await store.connect_device(app, rid, "n2", record, 30)
    assert second == first + 1
    (state,) = await store.lookup([(app, rid)])
    assert state.presence == Presence("n2", second)
    assert state.record == record


async def test_only_the_current_connection_drops_or_refreshes_presence(store, redis_client, uid):
    app, rid = f"app-{uid}", "d1"
    old = Held(app, rid, "n1", await store.connect_device(app, rid, "n1", DeviceRecord(), 30))
    new = Held(app, rid, "n2", await store.connect_device(app, rid, "n2", DeviceRecord(), 30))
    assert await store.refresh_presence([old, new], 60) == [False, True]
    assert 30 < await redis_client.ttl(keys.presence(app, rid)) <= 60
    assert not await store.drop_presence(old)
    assert (await store.lookup([(app, rid)]))[0].presence == Presence("n2", new.epoch)
    assert await store.drop_presence(new)
    assert (await store.lookup([(app, rid)]))[0].presence is None


async def test_refresh_recreates_presence_that_expired_under_a_live_socket(store, redis_client,
                                                                         uid):
    app = f"app-{uid}"
    held = Held(app, "d1", "n1", await store.connect_device(app, "d1", "n1", DeviceRecord(), 30))
    await redis_client.delete(keys.presence(app, "d1"))
    assert await store.refresh_presence([held], 30) == [True]
    assert (await store.lookup([(app, "d1")]))[0].presence == Presence("n1", held.epoch)


async def test_lookup_keeps_order_and_reports_unknown_devices(store, redis_client, uid):
    app = f"app-{uid}"
    await store.connect_device(app, "on", "n1", DeviceRecord("ios"), 30)
    await redis_client.set(keys.device(app, "corrupt"), b"\xc1 not msgpack")
    states = await store.lookup([(app, "unknown"), (app, "on"), (app, "corrupt")])
    assert [s.presence.node if s.presence else None for s in states] == [None, "n1", None]
    assert [s.record for s in states] == [None, DeviceRecord("ios"), None]


async def test_node_inbox_delivers_entries_in_order_after_the_tail(store, uid):
    node = f"node-{uid}"
    assert await store.inbox_tail(node) == b"0-0"
    await store.deliver_to_nodes([(node, b"one"), (f"other-{uid}", b"x")])
    tail = await store.inbox_tail(node)
    await store.deliver_to_nodes([(node, b"two"), (node, b"three")])
    entries = await store.read_inbox(node, tail, block_ms=100, count=10)
    assert [value for _, value in entries] == [b"two", b"three"]
    assert await store.read_inbox(node, entries[-1][0], block_ms=10, count=10) == []
