"""Scenario ``broadcast``: one all-users push to N online devices.

For each size N, a fresh app gets N device records in Redis, and ceil(N / ``--per-gateway``)
fresh gateway processes start (one process may open 20,000 files here, so one gateway holds
at most about 19,500 devices); device generator processes connect the N devices, spread evenly
over the gateways, with HELLO. The gateway's HELLO path adds each device to the app's device
set (``observe_device``), which is the audience of an all-users push; the scenario waits until
that set and the presence keys hold exactly the N devices, warms the path up with one unicast
push to a hundred of them, waits for the machine to be quiet, then publishes ONE push request
with ``"audience": {"all": true}`` (PushFlag 1, no lifetime: nothing goes to a vendor) and its
produce time in ``message.data["t"]``. The router (one, or ``--routers``) resolves the app's
device set and fans it out in shards over ``push.fanout``.

Figures per size: produce → first and last device receipt, deliveries per second (N / (last
receipt - produce)), p50 / p99 / max per device (receipt - produce, timed in the generator
processes), time until the last ACK (the newest ``delivered`` event of the task on
``push.events``: a gateway emits it when it matches the device's ACK, stamped with its clock;
the gateways' ``herald_gateway_acks_total`` must reach N too), devices lost (no PUSH within
``--wait`` s) and duplicates, when the router had routed every shard (the task status, polled),
how long each gateway's liveness key was missing meanwhile, and the CPU of every process
(``/proc``, every 0.1 s) from produce until the last ACK, also per delivery, next to what
holding the devices costs before the push. The gateways ask for a 60 s heartbeat: with
Herald's default of 10 s, holding 100,000 devices alone takes most of this machine.

    python -m benchmarks.broadcast [--sizes 10000,50000,100000] [--per-gateway 17000] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from benchmarks import cli, receivers, redisdata, results
from benchmarks.connections import capacity
from benchmarks.devices import rid
from benchmarks.fleet import PER_PROCESS, SOURCES_PER_PROCESS, FleetReport
from benchmarks.lag import GroupLag
from benchmarks.online import Online
from benchmarks.outcomes import Outcomes, TaskEvents
from benchmarks.poll import until, until_async
from benchmarks.procs import (
    KAFKA,
    REDIS,
    Role,
    Sampler,
    Usage,
    backend_pids,
    elsewhere,
    quiet,
    sample,
    shares,
)
from benchmarks.stats import latency_ms
from herald.redis_store import RedisStore
from herald.settings import RouterSettings
from proto import keys, topics
from proto.audience import Audience
from proto.envelopes import PushRequest, encode_push_request
from proto.message import Message
from proto.tasks import TaskState, TaskStatus

SCENARIO = "broadcast"
#: Devices one gateway process holds at most by default: under its open-file limit, with room
#: for its Redis and Kafka connections.
PER_GATEWAY = 17_000
#: Memory a connected device costs, all processes together (gateway about 15 KiB, generator,
#: Redis keys), with a margin: a size that would not fit in the free memory is skipped.
_BYTES_PER_DEVICE = 64 * 1024
#: Devices of the warm-up unicast push (spread over every generator, so every gateway).
_WARM_DEVICES = 100
#: The router's decisions, as its ``routing`` log line counts them.
_DECISIONS = ("online", "vendor", "inbox", "offline", "no_channel")


@dataclass
class Stack:
    """What every size of a run shares: the routers, a producer, the store, the log dir."""

    args: argparse.Namespace
    routers: list[Role]
    partitions: tuple[int, ...]
    kafka: AIOKafkaProducer
    store: RedisStore
    logs: Path
    #: The routers' two consumer groups (requests, fan-out).
    groups: list[GroupLag]
    #: Every app the run created, for a last clean-up once the routers are gone.
    apps: list[str] = field(default_factory=list)

    async def publish(self, request: PushRequest) -> None:
        """Publish one push request to a partition our first router holds."""
        partition = self.partitions[0] if self.partitions else None
        await self.kafka.send_and_wait(topics.REQUESTS, encode_push_request(request),
                                       partition=partition)

    def rebalances(self) -> int:
        """Partition assignments the routers logged so far."""
        return sum(len(r.logged("partitions assigned")) for r in self.routers)

    async def alone(self, timeout_s: float) -> int:
        """Wait (at most ``timeout_s``) until our routers are the only members of their
        groups: another router (a test's) would route some shards, with its own CPU and its
        own crashes. The other members last seen."""
        others = 0

        async def check() -> bool:
            nonlocal others
            counts = [await g.members() for g in self.groups]
            others = sum(counts) - len(self.routers) * len(self.groups)
            return others <= 0

        if not await until_async(check, timeout_s, 1.0):
            print(f"routing shared with {others} other consumer group members")
        return max(others, 0)

    def routed_here(self, task: str) -> int:
        """Devices of ``task`` our routers decided for (their ``routing`` log lines)."""
        return sum(int(line.get(d, 0)) for r in self.routers for line in r.logged("routing")
                   if line.get("task_id") == task for d in _DECISIONS)


def _memory_available() -> int:
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["MemAvailable"].split()[0]) * 1024


def skip_reason(size: int, per_gateway: int) -> str | None:
    """Why ``size`` devices cannot be measured here, or None if they can."""
    if per_gateway > capacity():
        return (f"{per_gateway} devices per gateway, but one process may open "
                f"{resource.getrlimit(resource.RLIMIT_NOFILE)[1]} files here (hard "
                "RLIMIT_NOFILE)")
    need, free = size * _BYTES_PER_DEVICE, _memory_available()
    if need > free:
        return f"needs about {need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB available"
    gateways = math.ceil(size / per_gateway)
    processes = math.ceil(math.ceil(size / PER_PROCESS) / gateways) * gateways
    if 2 + processes * SOURCES_PER_PROCESS > 255:
        return f"{processes} generator processes need more loopback source addresses than one /24"
    return None


@dataclass
class Timeline:
    """When the devices had the push and the router was done, in seconds since the epoch;
    how long each gateway's liveness key was seen missing meanwhile (the router routes the
    devices of a node without one as offline)."""

    received_all: bool = False
    routed_at: float = 0.0
    status: TaskStatus | None = None
    dead_s: dict[str, float] = field(default_factory=dict)


async def follow(stack: Stack, online: Online, task: str, base: int,
                 deadline: float) -> Timeline:
    """Watch the devices' receipts with a progress bar until every device of the audience
    has the push or ``deadline`` (monotonic) passes; poll the task status and the gateways'
    liveness meanwhile."""
    assert online.fleet is not None
    fleet, seen = online.fleet, Timeline()
    names = list(online.pids())
    last_poll = next_poll = time.monotonic()
    with tqdm(total=online.audience, desc="broadcast received", unit="dev",
              mininterval=0.5) as bar:
        while time.monotonic() < deadline:
            got = fleet.total(receivers.UNIQUE) - base
            bar.update(got - bar.n)
            if got >= online.audience:
                seen.received_all = True
                if seen.routed_at:
                    break
            now = time.monotonic()
            if now >= next_poll:
                # Two Redis round trips every 50 ms: the end of routing to ±50 ms, and any
                # lapse of a node's liveness that the router may have seen.
                next_poll = now + 0.05
                for name, alive in zip(names, await stack.store.nodes_alive(online.nodes),
                                       strict=True):
                    if not alive:
                        seen.dead_s[name] = seen.dead_s.get(name, 0.0) + now - last_poll
                last_poll = now
                if not seen.routed_at:
                    seen.status = await stack.store.task_status(online.app, task)
                    if seen.status is not None and seen.status.state is TaskState.DONE:
                        seen.routed_at = time.time()
                        bar.set_postfix(routed="all", refresh=False)
            await asyncio.sleep(0.01)
    seen.status = await stack.store.task_status(online.app, task)
    return seen


async def warm_up(stack: Stack, online: Online) -> int:
    """One unicast push to devices of every generator (so every gateway): the first push
    through a fresh gateway pays for its Kafka metadata and code paths. The receipts so far."""
    assert online.fleet is not None
    fleet = online.fleet
    step = max(1, online.size // _WARM_DEVICES)
    ids = [rid(i) for i in range(0, online.size, step)][:_WARM_DEVICES]
    base, acks = fleet.total(receivers.UNIQUE), online.acks()
    await stack.publish(PushRequest(task_id=f"{online.app}-warm-{uuid.uuid4().hex[:6]}",
                                    app_id=online.app, registration_ids=ids,
                                    message=Message(title="bench", body="warm-up"),
                                    push_flag=1))
    # A device the warm-up misses (its presence lapsed) is the broadcast's to count as lost.
    await until(lambda: fleet.total(receivers.UNIQUE) - base >= len(ids), 30)
    await until(lambda: online.acks() - acks >= len(ids), 10, interval_s=0.2)
    return fleet.total(receivers.UNIQUE)


def _since_ms(at_s: float, t0_us: int) -> float | None:
    return round(at_s * 1000 - t0_us / 1000, 1) if at_s else None


def _cpu_seconds(after: dict[str, Usage], before: dict[str, Usage]) -> dict[str, float]:
    return {name: round(after[name].cpu_s - before[name].cpu_s, 3) for name in after}


def figures(t0_us: int, seen: Timeline, report: FleetReport, outcomes: Outcomes,
            audience: int, duplicates: int) -> dict[str, Any]:
    """The delivery figures of one broadcast (times in ms since produce)."""
    t0_ms = t0_us / 1000
    latency = [us / 1000 for us in report.latency_us]
    received = len(latency)
    acked = [ts - t0_ms for ts in outcomes.acked_ms.values()]
    last_receipt = max(latency) if latency else None
    status = seen.status
    return {
        "received": received,
        "lost": audience - received, "all_received": seen.received_all,
        "duplicates": duplicates,
        "first_receipt_ms": round(min(latency), 1) if latency else None,
        "last_receipt_ms": round(last_receipt, 1) if last_receipt is not None else None,
        "deliveries_per_s": round(received / (last_receipt / 1000), 1) if last_receipt else 0,
        "latency_ms": latency_ms(latency),
        "acked": len(acked), "ack_events_repeated": outcomes.repeated,
        "last_ack_ms": round(max(acked), 1) if acked else None,
        "ack_ms": latency_ms(acked),
        "other_events": dict(outcomes.others),
        "router_started_ms": round(status.started_ms - t0_ms, 1)
        if status and status.started_ms else None,
        "all_routed_ms": _since_ms(seen.routed_at, t0_us),
        "task": {"state": str(status.state), "shards": status.shards_planned,
                 "shards_done": status.shards_done, "devices": status.devices,
                 "decisions": status.decisions} if status else None,
    }


def _by_kind(per_process: dict[str, float]) -> dict[str, float]:
    def total(*prefixes: str) -> float:
        return sum(v for k, v in per_process.items() if k.startswith(prefixes))

    return {"gateways": total("gateway"), "routers": total("router"),
            "redis": per_process.get("redis", 0.0), "kafka": per_process.get("kafka", 0.0),
            "generators": total("generator", "scenario"), "machine": per_process["machine"]}


def costs(after: dict[str, Usage], before: dict[str, Usage], idle: dict[str, float],
          received: int) -> dict[str, Any]:
    """CPU of every process from produce until the last ACK, in shares of a core and in
    seconds, and by kind of process (the generators with the scenario's own process) in
    microseconds per delivery: all of it, and above what holding the devices costs
    (``idle``: shares of a core before the push), an estimate of the broadcast's own cost."""
    cpu = shares(after, before)
    spent = _cpu_seconds(after, before)
    window = after["machine"].at - before["machine"].at
    gross, held = _by_kind(spent), _by_kind(idle)
    per = max(received, 1)
    return {
        "window_s": round(window, 3), "cpu": cpu, "cpu_s": spent,
        "cpu_s_by_kind": {k: round(v, 3) for k, v in gross.items()},
        "cpu_us_per_delivery": {k: round(v * 1e6 / per, 1) for k, v in gross.items()},
        "cpu_us_per_delivery_above_idle": {k: round((v - held[k] * window) * 1e6 / per, 1)
                                           for k, v in gross.items()},
        "other_load_cores": elsewhere(cpu, 0.0),
        "idle_cpu": idle, "idle_cores_by_kind": {k: round(v, 3) for k, v in held.items()},
    }


async def push_once(stack: Stack, online: Online) -> dict[str, Any]:
    """Warm up, wait for quiet, measure what holding the devices costs, publish one
    all-users push and measure it."""
    assert online.fleet is not None
    fleet, app, audience = online.fleet, online.app, online.audience
    base = await warm_up(stack, online)
    pids = {**online.pids(), **{f"router_{k}": r.pid for k, r in enumerate(stack.routers)},
            **backend_pids(), **{f"generator_{k}": pid for k, pid in enumerate(fleet.pids)},
            "scenario": os.getpid()}
    others = await stack.alone(timeout_s=120)
    # Redis and Kafka are shared with other work on the machine: their load counts as
    # someone else's here, so the push waits until they are quiet too.
    quiet_before = await quiet([pid for name, pid in pids.items()
                                if name not in ("redis", "kafka")])
    events = await TaskEvents().start()
    sampler = Sampler(pids, interval_s=0.1)
    sampling: asyncio.Task[None] | None = None
    try:
        acks0, assigned0 = online.acks(), stack.rebalances()
        held0 = await fleet.report()  # drops the warm-up's samples
        idle0 = sample(pids)
        await asyncio.sleep(stack.args.idle)
        before = sample(pids)
        idle = shares(before, idle0)
        task = f"{app}-all-{uuid.uuid4().hex[:6]}"
        sampling = asyncio.create_task(sampler.run())
        t0_us = time.time_ns() // 1000
        await stack.publish(PushRequest(task_id=task, app_id=app, audience=Audience(all=True),
                                        message=Message(title="bench", body="broadcast",
                                                        data={"t": t0_us}),
                                        push_flag=1))
        seen = await follow(stack, online, task, base, time.monotonic() + stack.args.wait)
        all_acked = await until(lambda: online.acks() - acks0 >= audience,
                                max(1.0, t0_us / 1e6 + stack.args.wait - time.time()), 0.1)
        acked_at = time.time()
        online.check()
        for router in stack.routers:
            router.check()
        report = await fleet.report()
        gateway_acks = online.acks() - acks0
        # Sampling goes on while the events are read, so a sample after the last ACK exists.
        outcomes = await events.collect(task, audience, timeout_s=30)
        await asyncio.sleep(0.2)
    finally:
        if sampling is not None:
            sampling.cancel()
        await events.close()
    run = figures(t0_us, seen, report, outcomes, audience,
                  report.duplicates - held0.duplicates)
    last_ms = max(run["last_ack_ms"] or 0.0, run["last_receipt_ms"] or 0.0)
    run.update({
        "gateway_acks": gateway_acks, "all_acked": all_acked,
        "acks_counted_ms": _since_ms(acked_at, t0_us) if all_acked else None,
        "liveness_lapsed_s": {k: round(v, 2) for k, v in seen.dead_s.items()},
        "lost_connections": report.lost, "other_load_before_cores": quiet_before,
        "rebalances": stack.rebalances() - assigned0,
        "other_router_members": others, "routed_here": stack.routed_here(task),
        # What the generator processes say they spent (getrusage) from the idle window's
        # start until the end of the wait; the figures below read /proc over the window.
        "generators_reported_cpu_s": round(report.cpu_s - held0.cpu_s, 2),
        **costs(sampler.at(t0_us / 1e6 + last_ms / 1000), before, idle, run["received"]),
    })
    return run


async def measure(stack: Stack, size: int, block: int) -> dict[str, Any]:
    """One size: fresh app, gateways and devices; one all-users push (once more if the
    routers' groups rebalanced meanwhile: other members took part); the figures."""
    args = stack.args
    per_gateway = min(args.per_gateway, size)
    reason = skip_reason(size, per_gateway)
    if reason:
        return {"size": size, "gateways": math.ceil(size / per_gateway), "skipped": reason}
    online = Online(size, per_gateway, stack.logs, heartbeat_s=args.heartbeat,
                    concurrency=args.concurrency, block=block)
    stack.apps.append(online.app)
    print(f"size {size:,}: {len(online.nodes)} gateway(s)")
    # Connecting is the longest part of a size: not while someone else's work runs either.
    quiet_connect = await quiet([r.pid for r in stack.routers])
    try:
        reason = await online.start(timeout_s=60 + size / 200)
        if reason:
            return {"size": size, "gateways": len(online.nodes), "skipped": reason}
        run = await push_once(stack, online)
        attempts = 1
        if run["rebalances"] or run["routed_here"] < online.audience:
            # Another router took part: its share of the work is in no figure here.
            stack.partitions = await stack.routers[0].assignment(topics.REQUESTS)
            run, attempts = await push_once(stack, online), 2
        return {"size": size, **online.figures(), "attempts": attempts,
                "other_load_before_connect_cores": quiet_connect, **run}
    finally:
        await online.stop()


async def run(args: argparse.Namespace, sizes: list[int]) -> list[dict[str, Any]]:
    """Start the routers, warm their fan-out path up, then measure every size."""
    logs = cli.workdir(SCENARIO)
    groups = [await GroupLag(topics.ROUTER_GROUP, topics.REQUESTS, topics.FALLBACK).start(),
              await GroupLag(topics.FANOUT_GROUP, topics.FANOUT).start()]
    routers: list[Role] = []
    kafka = AIOKafkaProducer(bootstrap_servers=KAFKA, acks=1, linger_ms=0)
    store = RedisStore(REDIS)
    runs: list[dict[str, Any]] = []
    stack: Stack | None = None
    try:
        args.members_before = {g.group: await g.members() for g in groups}
        for group in groups:
            await group.skip_backlog()
        routers = [Role(["router"], {}, logs / f"router-{k}.log") for k in range(args.routers)]
        partitions = await routers[0].assignment(topics.REQUESTS)
        args.fanout_partitions = [list(await r.assignment(topics.FANOUT)) for r in routers]
        await kafka.start()
        stack = Stack(args, routers, partitions, kafka, store, logs, groups)
        await warm_routers(stack)
        for block, size in enumerate(sizes, start=1):
            try:
                runs.append(await measure(stack, size, block))
            except Exception as exc:
                # A role or generator gave out at this size: keep the sizes measured so far.
                runs.append({"size": size, "skipped": f"failed: {exc}"[:300]})
            print({k: v for k, v in runs[-1].items() if not isinstance(v, dict)})
    finally:
        await kafka.stop()
        await store.close()
        await asyncio.gather(*(r.stop() for r in routers))
        for group in groups:
            await group.close()
        # A router may record a task's progress after its size was cleaned up.
        for app in stack.apps if stack is not None else []:
            await redisdata.forget(app, [])
    return runs


async def warm_routers(stack: Stack) -> None:
    """An all-users push to a few registered, offline devices: the routers' first fan-out
    (resolve, plan, route a shard) is not part of any size's figures."""
    app = f"bench-bc-warm-{uuid.uuid4().hex[:8]}"
    stack.apps.append(app)
    await redisdata.create_app(app)
    r = redisdata.client()
    try:
        await r.sadd(keys.all_devices(app), *(rid(i) for i in range(10)))
        await stack.publish(PushRequest(task_id=f"{app}-all", app_id=app,
                                        audience=Audience(all=True),
                                        message=Message(title="bench", body="warm-up"),
                                        push_flag=1))

        async def done() -> bool:
            status = await stack.store.task_status(app, f"{app}-all")
            return status is not None and status.state is TaskState.DONE

        if not await until_async(done, 60):
            raise RuntimeError("the routers did not finish the warm-up broadcast in 60 s")
    finally:
        await r.aclose()
        await redisdata.forget(app, [])


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.broadcast``."""
    parser = cli.parser(__doc__ or "", "online devices of the app, all pushed to at once")
    parser.add_argument("--per-gateway", type=int,
                        help=f"devices per gateway process at most [{PER_GATEWAY}; 150]")
    parser.add_argument("--routers", type=int, default=1, help="router processes [1]")
    parser.add_argument("--heartbeat", type=int, default=60,
                        help="heartbeat interval the gateways ask for, seconds [60; Herald's "
                             "default of 10 costs 1.5 of the 2 cores at 100,000 devices "
                             "here before any push]")
    parser.add_argument("--wait", type=float, help="seconds after produce to wait for every "
                        "device [60; 20]")
    parser.add_argument("--idle", type=float, help="seconds to measure what holding the "
                        "devices costs before the push [10: a presence sweep; 2]")
    parser.add_argument("--concurrency", type=int, default=100,
                        help="handshakes in flight per generator process [100]")
    args = cli.prepare(argv, parser)
    args.per_gateway = args.per_gateway or (150 if args.smoke else PER_GATEWAY)
    args.wait = args.wait or (20.0 if args.smoke else 60.0)
    args.idle = args.idle or (2.0 if args.smoke else 10.0)
    sizes = cli.choose(args, "10000,50000,100000", "300")
    runs = asyncio.run(run(args, sizes))
    fanout = RouterSettings()
    params = {"push_flag": 1, "lifetime_s": 0, "per_gateway": args.per_gateway,
              "routers": args.routers, "heartbeat_s": args.heartbeat, "wait_s": args.wait,
              "idle_s": args.idle,
              "fanout_shard": fanout.fanout_shard, "fanout_step": fanout.fanout_step,
              "fanout_batch": fanout.fanout_batch,
              "router_fanout_partitions": args.fanout_partitions,
              "other_group_members": args.members_before}
    path = results.write(SCENARIO, cli.out_dir(args, SCENARIO), smoke=args.smoke,
                         params=params, runs=runs)
    print(f"result: {path}")
    measured = [r for r in runs if "skipped" not in r]
    if args.smoke and (not measured or any(r["lost"] or r["acked"] < r["audience"]
                                           for r in measured)):
        raise SystemExit("broadcast smoke run lost pushes or acks")


if __name__ == "__main__":
    main()
