"""Scenario ``connections``: idle devices held by one gateway process, heartbeats on.

For each size N a fresh gateway process starts; device generator processes connect N devices
(HELLO, then a PING every heartbeat interval) and hold them. Figures: the gateway's RSS per
connection ((RSS after the hold - RSS before connecting) / N), the connect rate, handshake
latency, connections the kernel dropped because the gateway's listen queue was full (SYNs are
then retried after 1, 3, 7 s...), and the CPU of the gateway, of Redis and of the generators
while connecting and while holding. A size above what one process may open (its hard
open-file limit) is recorded as skipped, with the reason.

    python -m benchmarks.connections [--sizes 1000,10000,max] [--hold 30] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks import cli, redisdata, results
from benchmarks.fleet import Fleet
from benchmarks.procs import (
    Role,
    backend_pids,
    free_port,
    listen_overflows,
    quiet,
    sample,
    shares,
)
from benchmarks.stats import latency_ms

SCENARIO = "connections"
#: File descriptors a gateway needs besides its device sockets (Redis pool, Kafka, logs).
_RESERVE_FDS = 512


def capacity() -> int:
    """Connections one gateway process can hold here: its hard open-file limit, less a reserve."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1] - _RESERVE_FDS


def _size(item: str) -> int:
    return capacity() if item == "max" else int(item)


async def hold(seconds: float) -> None:
    """Wait ``seconds`` with a progress bar."""
    with tqdm(total=round(seconds), desc="holding", unit="s", mininterval=1) as bar:
        for _ in range(round(seconds)):
            await asyncio.sleep(1)
            bar.update(1)


async def measure(size: int, args: argparse.Namespace, logs: Path, block: int) -> dict[str, Any]:
    """Connect ``size`` devices to a fresh gateway, hold them, and measure."""
    if size > capacity():
        return {"size": size, "skipped": f"one process may open {capacity() + _RESERVE_FDS} "
                                         "files here (hard RLIMIT_NOFILE; raising it needs "
                                         "CAP_SYS_RESOURCE)"}
    app = f"bench-conn-{uuid.uuid4().hex[:8]}"
    secret = (await redisdata.create_app(app)).device_secret
    port = free_port()
    gateway = Role(["gateway"], {"HERALD_NODE_ID": app, "HERALD_PORT": str(port),
                                 "HERALD_HEARTBEAT_S": str(args.heartbeat),
                                 "HERALD_HEARTBEAT_TIMEOUT_S": str(2.5 * args.heartbeat)},
                   logs / f"gateway-{size}.log")
    try:
        await gateway.wait_port(port)
        quiet_before = await quiet([gateway.pid])
        before, backends0 = gateway.usage(), sample(backend_pids())
        overflows0 = listen_overflows()
        fleet = Fleet(port, app, secret, size, block=block, concurrency=args.concurrency)
        try:
            await fleet.wait_connected(timeout_s=60 + size / 100)
            gateway.check()
            connected, backends1 = gateway.usage(), sample(backend_pids())
            overflows = listen_overflows() - overflows0
            await hold(args.hold)
            gateway.check()
            held, backends2 = gateway.usage(), sample(backend_pids())
            gauge = gateway.metric("herald_gateway_connections").get("", 0.0)
        finally:
            report = await fleet.stop()
    finally:
        await gateway.stop()
        await redisdata.forget(app, [app])
    connect_s = max(report.last_welcome - report.first_start, 1e-9)
    held_count = report.connected - report.lost
    return {
        "size": size, "connected": report.connected, "failed": report.failed,
        "retries": report.retries, "failed_attempts": dict(report.failed_attempts),
        "lost_while_held": report.lost,
        "losses": dict(report.losses), "gateway_connections_gauge": gauge,
        "rss_before_mib": round(before.rss / 2**20, 1),
        "rss_connected_mib": round(connected.rss / 2**20, 1),
        "rss_held_mib": round(held.rss / 2**20, 1),
        "rss_per_conn_kib": round((held.rss - before.rss) / max(held_count, 1) / 1024, 2),
        "connect_s": round(connect_s, 2),
        "connect_rate_per_s": round(report.connected / connect_s, 1),
        "connect_ms": latency_ms(report.connect_ms), "listen_overflows": overflows,
        "gateway_cpu_connecting": round(connected.cpu_share(before), 3),
        "gateway_cpu_holding": round(held.cpu_share(connected), 3),
        "backend_cpu_connecting": shares(backends1, backends0),
        "backend_cpu_holding": shares(backends2, backends1),
        "pings": report.pings, "pongs": report.pongs,
        "pings_per_s_holding": round(held_count / args.heartbeat, 1),
        "generator_processes": len(fleet.pids), "generator_cpu_s": round(report.cpu_s, 2),
        "other_load_before_cores": quiet_before,
    }


async def run(args: argparse.Namespace, sizes: list[int]) -> list[dict[str, Any]]:
    """Measure every size in turn, each with its own gateway and source addresses."""
    logs = cli.workdir(SCENARIO)
    runs = []
    for block, size in enumerate(sizes, start=1):
        run = await measure(size, args, logs, block)
        print({k: v for k, v in run.items() if not isinstance(v, dict)})
        runs.append(run)
    return runs


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.connections``."""
    parser = cli.parser(__doc__ or "", "connections held by one gateway ('max' = as many as "
                        "one process may open here)")
    parser.add_argument("--hold", type=float, help="seconds to hold the connections [30; 3]")
    parser.add_argument("--heartbeat", type=int,
                        help="heartbeat interval the gateway asks for, seconds [10; 1]")
    parser.add_argument("--concurrency", type=int, default=100,
                        help="handshakes in flight per generator process [100]")
    args = cli.prepare(argv, parser)
    args.hold = args.hold or (3.0 if args.smoke else 30.0)
    args.heartbeat = args.heartbeat or (1 if args.smoke else 10)
    sizes = cli.choose(args, "1000,10000,max,50000,100000", "300", _size)
    runs = asyncio.run(run(args, sizes))
    params = {"hold_s": args.hold, "heartbeat_s": args.heartbeat,
              "concurrency_per_process": args.concurrency, "max_per_process": capacity()}
    path = results.write(SCENARIO, cli.out_dir(args, SCENARIO), smoke=args.smoke,
                         params=params, runs=runs)
    print(f"result: {path}")
    failed = [r for r in runs if r.get("failed") or r.get("lost_while_held")]
    if args.smoke and (failed or not runs):
        raise SystemExit(f"smoke run lost or failed connections: {failed}")


if __name__ == "__main__":
    main()
