"""The gateway's inbox reader, in process on the real Redis: one XREAD reply does not hold the
event loop, so ACKs, other connections and the liveness beat run between its entries."""

from __future__ import annotations

import asyncio

from gateway.server import Gateway
from herald.kafka_bus import KafkaBus
from herald.redis_store import RedisStore
from herald.settings import GatewaySettings
from proto.envelopes import NodeDelivery, encode_internal
from tests.harness import KAFKA, REDIS, eventually


async def test_other_tasks_run_between_the_entries_of_one_reply(redis_client, uid):
    node = f"node-{uid}"
    store = RedisStore(REDIS)
    bus = KafkaBus(KAFKA, client_id=f"test-{uid}")
    gateway = Gateway(GatewaySettings(node_id=node), store, bus)
    entries = [(node, encode_internal(NodeDelivery("app", f"t{n}", f"t{n}", b"frame",
                                                   ["rid"], push_flag=1)))
               for n in range(50)]
    await store.send_to_nodes(entries)
    ticks = 0
    # The number of times another task had run when each entry was delivered.
    delivered_at: list[int] = []
    gateway._deliver = lambda delivery: delivered_at.append(ticks)  # type: ignore[method-assign]

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.get_running_loop().create_task(tick())
    reader = asyncio.get_running_loop().create_task(gateway._read_inbox(b"0-0"))
    try:
        await eventually(lambda: len(delivered_at) == 50, 10, "the 50 entries")
    finally:
        for task in (reader, ticker):
            task.cancel()
        await asyncio.gather(reader, ticker, return_exceptions=True)
        await store.close()
        await bus.stop()
    # All 50 came in one reply (count=256), and the other task ran between any two.
    assert len(set(delivered_at)) == 50
