"""A callbacks process killed with a post in flight loses nothing: its batch was not
committed, so the next process posts it again. One stopped (SIGTERM) with a post in flight
exits at once, leaving that batch uncommitted too."""

from __future__ import annotations

import time

from herald.redis_store import RedisStore
from proto.events import Stage
from tests.e2e.test_callbacks import ATTEMPTS, TIMEOUT_S, caught_up, event, produce, start_callbacks
from tests.harness import REDIS, eventually
from tests.test_callbacks import Receiver


async def test_sigkill_with_a_post_in_flight_posts_it_after_restart(producer, logdir, uid):
    app_id = f"cb-k-{uid}"
    receiver = Receiver(hang=True).start()
    store = RedisStore(REDIS)
    await store.put_callback(app_id, receiver.config(Stage.DELIVERED))
    roles = []
    try:
        first, _ = await start_callbacks(logdir, "callbacks-1")
        roles.append(first)
        await produce(producer, [event(Stage.DELIVERED, app_id, f"k-{uid}", "d")])
        await eventually(lambda: receiver.seen, 10, "the post in flight")
        first.kill()
        assert receiver.events() == []
        receiver.hang = False

        # The killed member holds its partitions until its session times out (10 s).
        second, _ = await start_callbacks(logdir, "callbacks-2", from_end=False)
        roles.append(second)
        await eventually(lambda: receiver.events(), 30, "the post, from the second process")
        assert {(e["task_id"], e["stage"]) for e in receiver.events()} == {
            (f"k-{uid}", "delivered")}
        assert all(s.verified for s in receiver.seen)

        receiver.hang = True
        await produce(producer, [event(Stage.DELIVERED, app_id, f"k2-{uid}", "d")])
        await eventually(lambda: any(f"k2-{uid}".encode() in s.body for s in receiver.seen), 10,
                         "another post in flight")
        stopping = time.monotonic()
        assert await second.stop() == 0
        assert time.monotonic() - stopping < TIMEOUT_S * ATTEMPTS
        assert second.find("stopping with posts in flight; their batch will be read again")
        assert not await caught_up()
    finally:
        receiver.stop()
        for role in roles:
            await role.stop()
        await store.close()
