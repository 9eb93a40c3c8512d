"""The device generator processes of a scenario, seen from the scenario."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from tqdm import tqdm

from benchmarks import devices
from benchmarks.child import Child, Report
from benchmarks.devices import DeviceSpec, Slot

#: Connections one generator process holds at most (each needs a file descriptor).
PER_PROCESS = 12_000
#: Loopback source addresses each generator process spreads its connections over.
SOURCES_PER_PROCESS = 4


@dataclass
class FleetReport:
    """The reports of every device process, merged."""

    connected: int = 0
    failed: int = 0
    lost: int = 0
    pings: int = 0
    pongs: int = 0
    retries: int = 0
    #: Repeated receipts of a message (``receivers.Receivers`` only).
    duplicates: int = 0
    cpu_s: float = 0.0
    first_start: float = math.inf
    last_welcome: float = 0.0
    failed_attempts: Counter[str] = field(default_factory=Counter)
    losses: Counter[str] = field(default_factory=Counter)
    connect_ms: list[float] = field(default_factory=list)
    latency_us: list[int] = field(default_factory=list)
    routed_ms: list[int] = field(default_factory=list)

    def add(self, report: Report) -> None:
        """Fold one process's report in."""
        if report["error"]:
            raise RuntimeError(f"a device generator failed: {report['error']}")
        for name in ("connected", "failed", "lost", "pings", "pongs", "retries", "cpu_s"):
            setattr(self, name, getattr(self, name) + report[name])
        self.duplicates += report.get("duplicates", 0)
        self.first_start = min(self.first_start, report["first_start"])
        self.last_welcome = max(self.last_welcome, report["last_welcome"])
        self.failed_attempts.update(report["failed_attempts"])
        self.losses.update(report["losses"])
        self.connect_ms += report["connect_ms"]
        self.latency_us += report["latency_us"]
        self.routed_ms += report["routed_ms"]


def sources(process: int, block: int) -> tuple[str, ...]:
    """Loopback source addresses of generator ``process``: 127.0.<block>.x, none shared."""
    first = 2 + process * SOURCES_PER_PROCESS
    return tuple(f"127.0.{block}.{first + j}" for j in range(SOURCES_PER_PROCESS))


class Fleet:
    """``count`` devices of ``app_id`` held by as many processes as they need, spread evenly
    over the gateways at ``port`` (one port, or several: each gets the same number of
    processes). ``target`` is the processes' entry point (``devices.main`` or a variant)."""

    def __init__(self, port: int | Sequence[int], app_id: str, device_secret: str, count: int,
                 *, block: int = 1, concurrency: int = 100, processes: int = 0,
                 target: Callable[[DeviceSpec, Any, Connection], None] = devices.main) -> None:
        self.count = count
        ports = (port,) if isinstance(port, int) else tuple(port)
        processes = processes or max(1, math.ceil(count / PER_PROCESS))
        processes = math.ceil(processes / len(ports)) * len(ports)
        share = math.ceil(count / processes)
        self._children = [
            Child(target, DeviceSpec(port=ports[k % len(ports)], app_id=app_id,
                                     device_secret=device_secret, first=first,
                                     count=min(share, count - first),
                                     sources=sources(k, block), concurrency=concurrency))
            for k, first in enumerate(range(0, count, share))
        ]

    @property
    def pids(self) -> list[int]:
        """Process ids of the generators."""
        return [c.process.pid for c in self._children if c.process.pid is not None]

    def total(self, slot: int) -> int:
        """A counter summed over the processes."""
        return sum(c.count(slot) for c in self._children)

    async def wait_connected(self, timeout_s: float) -> None:
        """Wait until every device connected or failed, with a progress bar."""
        deadline = time.monotonic() + timeout_s
        with tqdm(total=self.count, desc="connecting", unit="conn", mininterval=1) as bar:
            while time.monotonic() < deadline:
                done = self.total(Slot.CONNECTED) + self.total(Slot.FAILED)
                bar.update(done - bar.n)
                bar.set_postfix(failed=self.total(Slot.FAILED), refresh=False)
                if done >= self.count:
                    return
                await asyncio.sleep(0.2)
        raise TimeoutError(f"devices not connected after {timeout_s}s")

    async def report(self) -> FleetReport:
        """Merged reports (samples since the last report)."""
        merged = FleetReport()
        for report in await asyncio.gather(*(c.ask("report") for c in self._children)):
            merged.add(report)
        return merged

    async def stop(self) -> FleetReport:
        """Last merged report; the processes drop their connections and exit."""
        merged = FleetReport()
        for report in await asyncio.gather(*(c.stop() for c in self._children)):
            merged.add(report)
        return merged
