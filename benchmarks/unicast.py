"""Scenario ``unicast``: pushes to single online devices, end to end, at fixed rates.

A gateway and a router run as processes; device generator processes hold ``--devices``
connected devices. For each rate, a producer process publishes push requests (one registration
id each, PushFlag 1) at that rate for ``--duration`` seconds to the partitions of
``push.requests`` our router holds, each stamped with its produce time in
``message.data["t"]``; devices ack every push and record the latency from produce to receipt.
Figures per rate: p50 / p99 / p99.9 / max latency, losses, and the CPU of every process
involved, so the sweep shows where latency breaks down.

    python -m benchmarks.unicast [--sizes 500,1000,2000,3000,4000] [--duration 60] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from benchmarks import cli, redisdata, results
from benchmarks.devices import Slot
from benchmarks.fleet import Fleet
from benchmarks.lag import GroupLag
from benchmarks.poll import until
from benchmarks.procs import Role, backend_pids, elsewhere, free_port, quiet, sample, shares
from benchmarks.producer import Paced, Publisher
from benchmarks.stats import latency_ms
from proto import topics

SCENARIO = "unicast"


class Stack:
    """The roles, the devices and their app, for every rate of the sweep."""

    def __init__(self, args: argparse.Namespace, fleet: Fleet, gateway: Role,
                 router: Role, app: str, partitions: tuple[int, ...]) -> None:
        self.args = args
        self.partitions = partitions
        self.fleet = fleet
        self.gateway = gateway
        self.router = router
        self.app = app
        self._fleet_cpu_s = 0.0

    def pids(self) -> dict[str, int]:
        """The processes whose CPU a rate's figures show."""
        return {"gateway": self.gateway.pid, "router": self.router.pid, **backend_pids()}

    async def publish(self, rate: float, duration_s: float, tag: str) -> dict[str, Any]:
        """Publish at ``rate`` for ``duration_s``, wait for the devices to get it all, report."""
        received0 = self.fleet.total(Slot.PUSHES)
        publisher = Publisher(Paced(self.app, self.fleet.count, rate, duration_s, tag,
                                    self.partitions))
        with tqdm(total=publisher.total, desc=f"{rate:g}/s", unit="push", mininterval=1) as bar:
            deadline = time.monotonic() + 2 * duration_s + 30
            while not publisher.done and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                bar.update(publisher.sent - bar.n)
                bar.set_postfix(received=self.fleet.total(Slot.PUSHES) - received0,
                                refresh=False)
        produced = await publisher.finish()
        await until(lambda: self.fleet.total(Slot.PUSHES) - received0 >= produced["sent"],
                    self.args.drain)
        return produced

    async def measure(self, rate: int) -> dict[str, Any]:
        """One rate of the sweep."""
        duration = self.args.duration
        quiet_before = await quiet([*self.pids().values(), *self.fleet.pids])
        before = sample(self.pids())
        assigned0 = len(self.router.logged("partitions assigned"))
        produced = await self.publish(rate, duration, f"{self.app}-r{rate}")
        after = sample(self.pids())
        self.gateway.check()
        self.router.check()
        report = await self.fleet.report()
        devices_cpu, self._fleet_cpu_s = report.cpu_s - self._fleet_cpu_s, report.cpu_s
        span = max(produced["last_send"] - produced["first_send"], 1e-9)
        cpu = shares(after, before)
        window = after["machine"].at - before["machine"].at
        return {
            "size": rate, "rate_per_s": rate, "duration_s": duration,
            "devices_connected": report.connected - report.lost, "sent": produced["sent"],
            "achieved_rate_per_s": round(produced["sent"] / span, 1),
            "producer_max_behind_ms": produced["max_behind_ms"],
            "received": len(report.latency_us),
            "lost": produced["sent"] - len(report.latency_us),
            "latency_ms": latency_ms(report.latency_us, scale=0.001),
            "routed_to_device_ms": latency_ms(report.routed_ms),
            "cpu": cpu, "other_load_before_cores": quiet_before,
            "other_load_cores": elsewhere(cpu, (produced["cpu_s"] + devices_cpu) / window),
            "producer_cpu_s": round(produced["cpu_s"], 2),
            "devices_cpu_s": round(devices_cpu, 2),
            "gateway_rss_mib": round(after["gateway"].rss / 2**20, 1),
            "router_rss_mib": round(after["router"].rss / 2**20, 1),
            "rebalances": len(self.router.logged("partitions assigned")) - assigned0,
        }

    async def measure_settled(self, rate: int) -> dict[str, Any]:
        """``measure``, once more if the router's group rebalanced meanwhile (another member
        came or went), on the partitions the router then holds."""
        run = await self.measure(rate)
        if run["rebalances"]:
            self.partitions = await self.router.assignment(topics.REQUESTS)
            run = await self.measure(rate)
        return run

    async def warm_up(self) -> None:
        """A few pushes through the whole path, so the first rate does not pay for warm-up."""
        await self.publish(50, 2, f"{self.app}-warm")
        await self.fleet.report()


async def run(args: argparse.Namespace, rates: list[int]) -> list[dict[str, Any]]:
    """Start the roles and the devices, then sweep the rates."""
    logs = cli.workdir(SCENARIO)
    app = f"bench-uni-{uuid.uuid4().hex[:8]}"
    secret = (await redisdata.create_app(app)).device_secret
    lag = await GroupLag(topics.ROUTER_GROUP, topics.REQUESTS, topics.FALLBACK).start()
    try:
        args.members_before = await lag.members()
        await lag.skip_backlog()
    finally:
        await lag.close()
    port = free_port()
    gateway = Role(["gateway"], {"HERALD_NODE_ID": app, "HERALD_PORT": str(port)},
                   logs / "gateway.log")
    router = Role(["router"], {}, logs / "router.log")
    runs = []
    try:
        await gateway.wait_port(port)
        partitions = await router.assignment(topics.REQUESTS)
        fleet = Fleet(port, app, secret, args.devices, processes=2)
        try:
            await fleet.wait_connected(timeout_s=120)
            stack = Stack(args, fleet, gateway, router, app, partitions)
            await stack.warm_up()
            for rate in rates:
                runs.append(await stack.measure_settled(rate))
                print({k: v for k, v in runs[-1].items() if k != "cpu"}, runs[-1]["cpu"])
        finally:
            await fleet.stop()
    finally:
        await asyncio.gather(gateway.stop(), router.stop())
        await redisdata.forget(app, [app])
    return runs


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.unicast``."""
    parser = cli.parser(__doc__ or "", "push rates per second")
    parser.add_argument("--duration", type=float, help="seconds per rate [60; 3]")
    parser.add_argument("--devices", type=int, help="connected devices [1000; 100]")
    parser.add_argument("--drain", type=float, default=15.0,
                        help="seconds to wait for late pushes after each rate [15]")
    args = cli.prepare(argv, parser)
    args.duration = args.duration or (3.0 if args.smoke else 60.0)
    args.devices = args.devices or (100 if args.smoke else 1000)
    rates = cli.choose(args, "500,1000,2000,3000,4000", "100")
    runs = asyncio.run(run(args, rates))
    params = {"duration_s": args.duration, "devices": args.devices, "push_flag": 1,
              "registration_ids_per_push": 1, "other_group_members": args.members_before}
    path = results.write(SCENARIO, cli.out_dir(args, SCENARIO), smoke=args.smoke,
                         params=params, runs=runs)
    print(f"result: {path}")
    if args.smoke and (not runs or any(r["lost"] or not r["received"] for r in runs)):
        raise SystemExit("smoke run lost pushes")


if __name__ == "__main__":
    main()
