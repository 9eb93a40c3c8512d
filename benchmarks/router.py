"""Scenario ``router``: routing decisions per second of one router process.

Redis is seeded with ``--devices`` device records (vendor ``sandbox``); 70 % of the devices are
online, spread over four fake gateway nodes that read as alive and whose inboxes nobody reads,
the others are offline with a vendor record, so PushFlag 0 sends them to ``push.vendor.sandbox``.
For each size (routing decisions), a producer process publishes size / ``--ids`` push requests
of ``--ids`` registration ids each, as fast as it can, to the partitions our router holds; the
figure is the time from the first produce until the ``herald-router`` group's lag on them is
back to 0, and the router's CPU meanwhile.

    python -m benchmarks.router [--sizes 100000,1000000] [--ids 1000] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import uuid
from collections.abc import Sequence
from typing import Any

from benchmarks import cli, redisdata, results
from benchmarks.devices import rid
from benchmarks.lag import GroupLag, publish_and_drain
from benchmarks.procs import Role, backend_pids, elsewhere, quiet, sample, shares
from benchmarks.producer import Bulk
from proto import topics

SCENARIO = "router"
_NODES = 4
_ONLINE_TENTHS = 7
_DECISIONS = "herald_router_decisions_total"


async def measure(size: int, args: argparse.Namespace, app: str, router: Role,
                  lag: GroupLag, partitions: tuple[int, ...]) -> dict[str, Any]:
    """Route ``size`` decisions' worth of requests and time it."""
    requests = math.ceil(size / args.ids)
    pids = {"router": router.pid, **backend_pids()}
    quiet_before = await quiet(list(pids.values()))
    decided0, before = router.metric(_DECISIONS, by="decision"), sample(pids)
    assigned0 = len(router.logged("partitions assigned"))
    spec = Bulk("requests", app, args.devices, requests, args.ids, f"{app}-s{size}",
                partitions)
    produced, drained_at = await publish_and_drain(spec, lag, timeout_s=120 + size / 2000)
    after, decided = sample(pids), router.metric(_DECISIONS, by="decision")
    router.check()
    counts = {k: int(v - decided0.get(k, 0.0)) for k, v in decided.items()}
    total = sum(counts.values())
    elapsed = drained_at - produced["first_send"]
    router_cpu_s = after["router"].cpu_s - before["router"].cpu_s
    cpu = shares(after, before)
    window = after["machine"].at - before["machine"].at
    return {
        "size": size, "requests": requests, "ids_per_request": args.ids, "decisions": total,
        "by_decision": counts, "elapsed_s": round(elapsed, 3),
        "decisions_per_s": round(total / elapsed, 1),
        "router_cpu_s": round(router_cpu_s, 2),
        "decisions_per_router_cpu_s": round(total / max(router_cpu_s, 1e-9), 1),
        "produce_s": round(produced["last_send"] - produced["first_send"], 3),
        "producer_cpu_s": round(produced["cpu_s"], 2), "cpu": cpu,
        "other_load_before_cores": quiet_before,
        "other_load_cores": elsewhere(cpu, produced["cpu_s"] / window),
        "router_rss_mib": round(after["router"].rss / 2**20, 1),
        "rebalances": len(router.logged("partitions assigned")) - assigned0,
    }


async def run(args: argparse.Namespace, sizes: list[int]) -> list[dict[str, Any]]:
    """Seed Redis, start the router, and measure every size."""
    logs = cli.workdir(SCENARIO)
    app = f"bench-router-{uuid.uuid4().hex[:8]}"
    nodes = [redisdata.node(app, i) for i in range(_NODES)]
    r = redisdata.client()
    lag = await GroupLag(topics.ROUTER_GROUP, topics.REQUESTS, topics.FALLBACK).start()
    router: Role | None = None
    runs = []
    try:
        print(f"seeding {args.devices} devices")
        await redisdata.seed(r, app, [rid(i) for i in range(args.devices)],
                             online_tenths=_ONLINE_TENTHS, nodes=_NODES)
        args.members_before = await lag.members()
        args.backlog_skipped = await lag.skip_backlog()
        router = Role(["router"], {}, logs / "router.log")
        partitions = await router.assignment(topics.REQUESTS)
        lag.restrict(topics.REQUESTS, partitions)
        await publish_and_drain(Bulk("requests", app, args.devices, 5, min(args.ids, 100),
                                     f"{app}-warm", partitions), lag, timeout_s=120)
        for size in sizes:
            run = await measure(size, args, app, router, lag, partitions)
            if run["rebalances"]:  # another member came or went: once more, settled
                partitions = await router.assignment(topics.REQUESTS)
                lag.restrict(topics.REQUESTS, partitions)
                run = await measure(size, args, app, router, lag, partitions)
            runs.append(run)
            print(run)
    finally:
        if router is not None:
            await router.stop()
        await lag.close()
        await r.aclose()
        await redisdata.forget(app, nodes)
    return runs


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.router``."""
    parser = cli.parser(__doc__ or "", "routing decisions (registration ids routed)")
    parser.add_argument("--ids", type=int, help="registration ids per request [1000; 100]")
    parser.add_argument("--devices", type=int, help="devices seeded in Redis [100000; 1000]")
    args = cli.prepare(argv, parser)
    args.ids = args.ids or (100 if args.smoke else 1000)
    args.devices = args.devices or (1000 if args.smoke else 100_000)
    sizes = cli.choose(args, "100000,1000000", "2000")
    runs = asyncio.run(run(args, sizes))
    params = {"ids_per_request": args.ids, "devices": args.devices, "nodes": _NODES,
              "online_share": _ONLINE_TENTHS / 10, "push_flag": 0,
              "other_group_members": args.members_before}
    path = results.write(SCENARIO, cli.out_dir(args, SCENARIO), smoke=args.smoke,
                         params=params, runs=runs)
    print(f"result: {path}")
    if args.smoke and (not runs or any(r["decisions"] != r["size"] for r in runs)):
        raise SystemExit("smoke run: the router did not decide for every device")


if __name__ == "__main__":
    main()
