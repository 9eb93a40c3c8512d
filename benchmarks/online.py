"""N registered devices of a fresh app, online on as many fresh gateway processes as they need.

One process may open 20,000 files here, so a gateway holds at most about 19,500 devices: N
devices take ceil(N / ``per_gateway``) gateways, each its own node id and port, and the
generator processes spread the devices evenly over them. The devices' records are seeded in
Redis first (registered, none online); each device then says HELLO, and the gateway's HELLO
path adds it to the app's device set (``observe_device``), the audience of an all-users push.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from pathlib import Path
from typing import Any

import redis.asyncio as redis

from benchmarks import receivers, redisdata
from benchmarks.devices import Slot, rid
from benchmarks.fleet import Fleet
from benchmarks.poll import until_async
from benchmarks.procs import Role, free_port
from proto import keys

_ACKS = "herald_gateway_acks_total"


class Online:
    """The app, its gateways and its connected devices; ``start``, then ``stop``."""

    def __init__(self, size: int, per_gateway: int, logs: Path, *, heartbeat_s: int,
                 concurrency: int, block: int) -> None:
        self.size = size
        self.app = f"bench-bc-{uuid.uuid4().hex[:8]}"
        self.nodes = [f"{self.app}-g{j}" for j in range(math.ceil(size / per_gateway))]
        self._ports = [free_port() for _ in self.nodes]
        self._logs = logs
        self._env = {"HERALD_HEARTBEAT_S": str(heartbeat_s),
                     "HERALD_HEARTBEAT_TIMEOUT_S": str(2.5 * heartbeat_s)}
        self._concurrency = concurrency
        self._block = block
        self.gateways: list[Role] = []
        self.fleet: Fleet | None = None
        self.connect_s = 0.0
        #: Devices in the app's device set once connected: the audience of an all-users push.
        self.audience = 0
        #: Devices with presence once all connected: fewer than ``audience`` if a gateway
        #: could not refresh presence in time (its TTL is 30 s), and the router will then
        #: route those devices as offline.
        self.present = 0

    async def start(self, timeout_s: float) -> str | None:
        """Seed, start the gateways, connect every device and wait until each is in the app's
        device set; why not, if the devices did not connect in ``timeout_s``."""
        secret = (await redisdata.create_app(self.app)).device_secret
        r = redisdata.client()
        try:
            await redisdata.seed(r, self.app, [rid(i) for i in range(self.size)],
                                 online_tenths=0, nodes=0)
            self.gateways = [
                Role(["gateway"], {**self._env, "HERALD_NODE_ID": node, "HERALD_PORT": str(port)},
                     self._logs / f"gateway-{self.size}-{j}.log")
                for j, (node, port) in enumerate(zip(self.nodes, self._ports, strict=True))]
            await asyncio.gather(*(g.wait_port(p)
                                   for g, p in zip(self.gateways, self._ports, strict=True)))
            self.fleet = Fleet(self._ports, self.app, secret, self.size, block=self._block,
                               concurrency=self._concurrency, target=receivers.main)
            started = time.monotonic()
            try:
                await self.fleet.wait_connected(timeout_s)
            except TimeoutError:
                return (f"only {self.fleet.total(Slot.CONNECTED):,} of {self.size:,} devices "
                        f"connected within {timeout_s:.0f} s")
            self.connect_s = time.monotonic() - started
            self.audience, self.present = await _registered(
                r, self.app, self.size, self.fleet.total(Slot.CONNECTED))
        finally:
            await r.aclose()
        return None

    def pids(self) -> dict[str, int]:
        """The gateways' process ids, by name."""
        return {f"gateway_{j}": g.pid for j, g in enumerate(self.gateways)}

    def acks(self) -> int:
        """ACKs the gateways matched to a push so far."""
        return int(sum(g.metric(_ACKS, by="matched").get("true", 0.0) for g in self.gateways))

    def check(self) -> None:
        """Raise if a gateway exited or was stopped from outside."""
        for gateway in self.gateways:
            gateway.check()

    def figures(self) -> dict[str, Any]:
        """How the devices were spread and connected."""
        assert self.fleet is not None
        return {
            "gateways": len(self.gateways),
            "devices_per_gateway": [int(g.metric("herald_gateway_connections").get("", 0))
                                    for g in self.gateways],
            "gateway_rss_mib": [round(g.usage().rss / 2**20, 1) for g in self.gateways],
            "generator_processes": len(self.fleet.pids), "connect_s": round(self.connect_s, 1),
            "connected": self.fleet.total(Slot.CONNECTED),
            "connect_failed": self.fleet.total(Slot.FAILED), "audience": self.audience,
            "with_presence": self.present,
        }

    async def stop(self) -> None:
        """Drop the devices, stop the gateways, delete the app's keys."""
        if self.fleet is not None:
            await self.fleet.stop()
        await asyncio.gather(*(g.stop() for g in self.gateways))
        await redisdata.forget(self.app, self.nodes)


async def _registered(r: redis.Redis, app: str, size: int, count: int,
                      timeout_s: float = 60) -> tuple[int, int]:
    """Wait until the app's device set holds the ``count`` devices that connected (of devices
    ``0 .. size-1``; HELLO adds them in the background); the set's size, and how many of
    the devices have presence."""
    members = 0

    async def full() -> bool:
        nonlocal members
        members = await r.scard(keys.all_devices(app))
        return members >= count

    await until_async(full, timeout_s, 0.2)
    present = 0
    for start in range(0, size, 1000):
        present += await r.exists(*(keys.presence(app, rid(i))
                                    for i in range(start, min(size, start + 1000))))
    return int(members), int(present)
