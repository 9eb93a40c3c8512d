"""A callbacks process killed with a post in flight and a retry pending loses neither: the
post's batch of events was not committed, nor was the retry's record on push.callbacks.retry,
so the next process posts both. One stopped (SIGTERM) with posts in flight in both loops exits
at once, leaving both batches uncommitted too."""

from __future__ import annotations

import time

from herald.redis_store import RedisStore
from proto import topics
from proto.events import Stage
from tests.e2e.test_callbacks import event, events_handled, produce, start_callbacks
from tests.harness import REDIS, TopicWatcher, committed_offsets, eventually, eventually_async
from tests.test_callbacks import Receiver

#: Attempts enough that no post is parked while the test holds it.
ATTEMPTS = "20"


async def test_sigkill_with_a_retry_pending_posts_it_after_restart(producer, logdir, uid):
    app_id = f"cb-k-{uid}"
    receiver = Receiver(hang=True).start()
    store = RedisStore(REDIS)
    await store.put_callback(app_id, receiver.config(Stage.DELIVERED))
    retried = await TopicWatcher(topics.CALLBACKS_RETRY).start()
    roles = []

    def seen(task: str) -> int:
        return sum(f'"task_id":"{task}-{uid}"'.encode() in s.body for s in receiver.seen)

    def retries_of(task: str) -> list:
        return [r for r in retried.records if f'"task_id":"{task}-{uid}"'.encode() in r.value]

    def delivered() -> set[str]:
        return {e["task_id"].removesuffix(f"-{uid}") for e in receiver.events()}

    try:
        first, _ = await start_callbacks(logdir, "callbacks-1", max_attempts=ATTEMPTS)
        roles.append(first)
        await produce(producer, [event(Stage.DELIVERED, app_id, f"k1-{uid}", "d")])
        await eventually(lambda: seen("k1") >= 2, 10, "k1's retry in flight")
        await eventually_async(events_handled, 10, "the main loop to commit k1, handed off")
        await produce(producer, [event(Stage.DELIVERED, app_id, f"k2-{uid}", "d")])
        await eventually(lambda: seen("k2") >= 1, 10, "k2's first attempt in flight")
        first.kill()
        assert receiver.events() == []
        receiver.hang = False

        # The killed member holds its partitions of both groups until its session times out
        # (10 s).
        second, _ = await start_callbacks(logdir, "callbacks-2", from_end=False,
                                          max_attempts=ATTEMPTS, first_timeout_s="4",
                                          request_timeout_s="10")
        roles.append(second)
        await eventually(lambda: delivered() >= {"k1", "k2"}, 30,
                         "both posts, from the second process")
        assert delivered() == {"k1", "k2"}
        assert all(s.verified for s in receiver.seen)

        # A retry in flight in the retry loop, and a first attempt in the main loop.
        receiver.hang = True
        await produce(producer, [event(Stage.DELIVERED, app_id, f"k3-{uid}", "d")])
        await eventually(lambda: seen("k3") >= 2, 10, "k3's retry in flight")
        (k3,) = await eventually(lambda: retries_of("k3"), 10, "k3's retry record")
        await produce(producer, [event(Stage.DELIVERED, app_id, f"k4-{uid}", "d")])
        await eventually(lambda: seen("k4") >= 1, 10, "k4's first attempt in flight")
        stopping = time.monotonic()
        assert await second.stop() == 0
        assert time.monotonic() - stopping < 4
        for loop in ("main", "retry"):
            assert second.find("stopping with posts in flight; their batch will be read again",
                               loop=loop)
        assert not await events_handled()
        committed = await committed_offsets(topics.CALLBACKS_RETRY_GROUP, topics.CALLBACKS_RETRY)
        assert committed[k3.partition] <= k3.offset
        assert retries_of("k3") == [k3]
    finally:
        receiver.stop()
        for role in roles:
            await role.stop()
        await retried.stop()
        await store.close()
