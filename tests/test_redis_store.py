"""RedisStore on the real Redis: epochs, presence ownership, batched lookups, node inboxes."""

from __future__ import annotations

from herald.redis_store import RedisStore
from herald.store import Held, Presence
from proto import keys
from proto.audience import DEFAULT_LIMITS
from proto.envelopes import DeviceRecord
from proto.events import now_ms


async def test_each_connection_gets_a_higher_epoch_and_takes_presence(store, uid):
    app, rid = f"app-{uid}", "d1"
    record = DeviceRecord(platform="android", vendor="sandbox", vendor_token="tok")
    await store.put_device(app, rid, record)
    first, previous = await store.connect_device(app, rid, "n1", 30)
    assert previous is None
    second, previous = await store.connect_device(app, rid, "n2", 30)
    assert (second, previous) == (first + 1, Presence("n1", first))
    (state,) = await store.lookup([(app, rid)])
    assert state.presence == Presence("n2", second)
    assert state.record == record


async def test_only_the_current_connection_drops_or_refreshes_presence(store, redis_client, uid):
    app, rid = f"app-{uid}", "d1"
    old = Held(app, rid, "n1", (await store.connect_device(app, rid, "n1", 30))[0])
    new = Held(app, rid, "n2", (await store.connect_device(app, rid, "n2", 30))[0])
    assert await store.refresh_presence([old, new], 60) == [False, True]
    assert 30 < await redis_client.ttl(keys.presence(app, rid)) <= 60
    await store.drop_presence([old])
    assert (await store.lookup([(app, rid)]))[0].presence == Presence("n2", new.epoch)
    await store.drop_presence([new])
    assert (await store.lookup([(app, rid)]))[0].presence is None


async def test_refresh_recreates_presence_that_expired_under_a_live_socket(store, redis_client,
                                                                         uid):
    app = f"app-{uid}"
    held = Held(app, "d1", "n1", (await store.connect_device(app, "d1", "n1", 30))[0])
    await redis_client.delete(keys.presence(app, "d1"))
    assert await store.refresh_presence([held], 30) == [True]
    assert (await store.lookup([(app, "d1")]))[0].presence == Presence("n1", held.epoch)


async def test_one_refresh_of_many_connections_answers_each_in_order(store, redis_client, uid):
    app = f"app-{uid}"
    held = [Held(app, f"d{n}", "n1", (await store.connect_device(app, f"d{n}", "n1", 30))[0])
            for n in range(2000)]
    taken = set(range(0, 2000, 7))
    for n in taken:
        await store.connect_device(app, f"d{n}", "n2", 30)
    expired = set(range(3, 2000, 11)) - taken
    await redis_client.delete(*(keys.presence(app, f"d{n}") for n in expired))
    assert await store.refresh_presence(held, 90) == [n not in taken for n in range(2000)]
    states = await store.lookup([(app, f"d{n}") for n in range(2000)])
    assert [s.presence.node for s in states] == ["n2" if n in taken else "n1"
                                                 for n in range(2000)]
    assert 60 < await redis_client.ttl(keys.presence(app, "d3")) <= 90


async def test_lookup_keeps_order_and_reports_unknown_devices(store, redis_client, uid):
    app = f"app-{uid}"
    await store.put_device(app, "on", DeviceRecord(platform="ios"))
    await store.connect_device(app, "on", "n1", 30)
    await redis_client.set(keys.device(app, "corrupt"), b"\xc1 not msgpack")
    states = await store.lookup([(app, "unknown"), (app, "on"), (app, "corrupt")])
    assert [s.presence.node if s.presence else None for s in states] == [None, "n1", None]
    assert [s.record for s in states] == [None, DeviceRecord(platform="ios"), None]


async def test_node_inbox_delivers_entries_in_order_after_the_tail(store, uid):
    node = f"node-{uid}"
    assert await store.inbox_tail(node) == b"0-0"
    await store.send_to_nodes([(node, b"one"), (f"other-{uid}", b"x")])
    tail = await store.inbox_tail(node)
    await store.send_to_nodes([(node, b"two"), (node, b"three")])
    entries = await store.read_inbox(node, tail, block_ms=100, count=10)
    assert [value for _, value in entries] == [b"two", b"three"]
    assert await store.read_inbox(node, entries[-1][0], block_ms=10, count=10) == []


async def test_node_liveness(store, uid):
    node = f"node-{uid}"
    assert await store.nodes_alive([node]) == [False]
    await store.node_beat(node, 5000)
    assert await store.nodes_alive([node, f"other-{uid}"]) == [True, False]
    await store.node_gone(node)
    assert await store.nodes_alive([node]) == [False]


async def test_offline_inbox_keeps_order_bound_and_expiry(store, redis_client, uid):
    app = f"app-{uid}"
    far = now_ms() + 60_000
    assert await store.inbox_store(app, "m1", b"f1", far, ["d1", "d2"], 2) == [[], []]
    assert await store.inbox_store(app, "m2", b"f2", far, ["d1"], 2) == [[]]
    assert await store.inbox_store(app, "m3", b"f3", far, ["d1"], 2) == [["m1"]]
    assert await store.inbox_store(app, "m2", b"f2", far, ["d1"], 2) == [[]]  # idempotent
    assert [(s.msg_id, s.frame) for s in await store.inbox_read(app, "d1")] == [
        ("m2", b"f2"), ("m3", b"f3")]
    await store.inbox_remove(app, "d1", ["m2"])
    assert [s.msg_id for s in await store.inbox_read(app, "d1")] == ["m3"]
    # An expired message is never read back, and leaves the inbox.
    assert await store.inbox_store(app, "old", b"x", now_ms() - 1, ["d3"], 5) == [[]]
    assert await store.inbox_read(app, "d3") == []
    await redis_client.delete(keys.message(app, "m1"))
    assert await store.inbox_read(app, "d2") == []
    assert await redis_client.zcard(keys.inbox(app, "d2")) == 0


async def test_accounts_bind_and_move(store, uid):
    app = f"app-{uid}"
    await store.put_device(app, "d1", DeviceRecord(platform="ios"))
    await store.bind_account(app, "d1", "alice")
    await store.bind_account(app, "d2", "alice")
    assert await store.account_devices(app, "alice") == ["d1", "d2"]
    await store.bind_account(app, "d1", "bob")
    assert await store.account_devices(app, "alice") == ["d2"]
    assert (await store.get_device(app, "d1")) == DeviceRecord(platform="ios", account="bob")
    await store.bind_account(app, "d1", "")
    assert await store.account_devices(app, "bob") == []


def test_the_store_parts_keep_their_state_apart(redis_client):
    """The parts of ``RedisStore`` share one object: an attribute two parts set (a script
    each registers under the same name) would make one run the other's script."""
    client = redis_client
    owners: dict[str, str] = {}
    for part in RedisStore.__mro__[1:]:
        if part is object or "__init__" not in vars(part):
            continue
        probe = object.__new__(part)
        args = (client, DEFAULT_LIMITS) if part.__name__ == "RedisAudience" else (client,)
        part.__init__(probe, *args)
        for name in vars(probe):
            assert name == "_redis" or name not in owners, (name, owners.get(name), part)
            owners[name] = part.__name__
    assert len({o for o in owners.values()}) >= 6
