"""Running a role: uvloop, signal handling, the consume loop and the dead-letter hand-off every
consumer shares."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence

import structlog
import uvloop
from prometheus_client import Counter, Histogram

from herald.backoff import Backoff
from herald.bus import Bus, Record
from proto import topics


def run(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)`` on uvloop; SIGTERM and SIGINT set ``stop``. A role that cannot
    start or dies logs the error as JSON and exits with status 1."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    try:
        uvloop.run(runner())
    except Exception as exc:
        structlog.get_logger().exception("fatal", error=repr(exc))
        sys.exit(1)


async def bounded(step: Awaitable[object], seconds: float, what: str) -> None:
    """Await a shutdown step, giving up after ``seconds`` (logged) so that a stuck broker or
    socket never keeps a stopping role alive until its supervisor kills it."""
    try:
        async with asyncio.timeout(seconds):
            await step
    except TimeoutError:
        structlog.get_logger().warning("shutdown step timed out", step=what, seconds=seconds)


async def consume(bus: Bus, names: Sequence[str], group: str, max_records: int,
                  handle: Callable[[list[Record]], Awaitable[None]], stop: asyncio.Event, *,
                  seconds: Histogram, failures: Counter) -> None:
    """Join ``group`` on ``names`` and ``handle`` each batch until ``stop`` is set. A batch is
    committed when ``handle`` returns; one that raises is logged, counted in ``failures`` and
    read again after a capped, jittered backoff."""
    sub = await bus.subscribe(names, group)
    backoff = Backoff(base_s=0.1, cap_s=5.0)
    failed = 0
    while not stop.is_set():
        try:
            async with sub.batch(timeout_ms=200, max_records=max_records) as records:
                if records:
                    with seconds.time():
                        await handle(records)
            failed = 0
        except Exception:
            failed += 1
            failures.inc()
            structlog.get_logger().exception("batch failed; it will be retried", attempt=failed)
            await asyncio.sleep(backoff.delay(failed))
    await sub.close()


async def dead_letter(bus: Bus, record: Record, reason: str) -> asyncio.Future[object]:
    """Publish ``record`` unchanged to the dead-letter topic, with its reason and origin."""
    source = f"{record.topic}/{record.partition}/{record.offset}".encode()
    return await bus.publish(topics.DEADLETTER, record.value, key=record.key,
                             headers=[(topics.DL_REASON, reason.encode()[:1000]),
                                      (topics.DL_SOURCE, source)])
