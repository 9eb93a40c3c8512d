"""Scenario ``reconnect``: drain a gateway (SIGTERM) under load; devices move to another node.

Two gateway processes (node A and node B) and a router run as processes. For each size N, a
fresh app's N devices connect to node A with the lean generator of ``devices.py``, extended
here: a device that gets BYE ``shutdown`` and then sees the server close the connection
reconnects to node B. For the benchmark, it connects to B's port directly (no discovery) and
does not wait the BYE's ``retry_ms`` (500-5,000 ms, jittered by the server) unless
``--retry-scale`` says so (0 by default: reconnect at once; 1: honour it), so the figures are
the storm's worst case, not the server's jitter; reconnects are bounded to ``--concurrency``
handshakes in flight per generator process, like the first connects.

The scenario publishes one push per device (PushFlag 1, lifetime 300 s, produce time in
``message.data["t"]``): half before the SIGTERM to node A, half right after it. Figures per
size: time from SIGTERM until every device is connected to B (and p50 / p99 / max per device),
time from SIGTERM until every push was received, and pushes lost: a device counts a push once,
by message id; lost = devices that never received theirs within ``--wait`` s (60). Duplicates
(the same message id twice) are counted too.

    python -m benchmarks.reconnect [--sizes 1000,5000,10000] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import signal
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import uvloop
from aiokafka import AIOKafkaProducer
from tqdm import tqdm
from websockets.uri import WebSocketURI, parse_uri

from benchmarks import cli, devices, redisdata, results
from benchmarks.child import Child, Report, raise_nofile
from benchmarks.devices import Devices, DeviceSpec, Slot, rid
from benchmarks.fleet import PER_PROCESS, FleetReport, sources
from benchmarks.lag import GroupLag
from benchmarks.link import Link, Listener
from benchmarks.procs import KAFKA, Role, backend_pids, free_port, quiet, sample, shares
from benchmarks.stats import latency_ms
from proto import frames, tokens, topics
from proto.envelopes import PushRequest, encode_push_request
from proto.errors import DecodeError
from proto.frames import Bye, ByeReason, Hello, Push
from proto.message import Message

SCENARIO = "reconnect"
LIFETIME_S = 300
#: Counters of a mover process, after the four of ``devices.Slot``.
BYES, MOVED, MOVE_FAILED, UNIQUE = 4, 5, 6, 7


@dataclass(frozen=True, slots=True)
class MoveSpec:
    """Devices as in ``devices``, on node A; node B's port, and how to treat ``retry_ms``."""

    devices: DeviceSpec
    port_b: int
    retry_scale: float = 0.0
    attempts_b: int = 10


class ByeLink(Link):
    """A ``Link`` that remembers its device and the BYE it got."""

    def __init__(self, uri: WebSocketURI, hello: bytes, listener: Listener, index: int,
                 port: int) -> None:
        super().__init__(uri, hello, listener)
        self.index = index
        self.port = port
        self.bye: Bye | None = None

    def _on_frame(self, data: bytes) -> None:
        if self.bye is None and len(data) < 64:  # a BYE is small; a PUSH is not decoded twice
            try:
                frame = frames.decode_server(data)
            except DecodeError:
                frame = None
            if isinstance(frame, Bye):
                self.bye = frame
        super()._on_frame(data)


class Movers(Devices):
    """The devices of one generator process: connect to A, move to B after BYE."""

    def __init__(self, spec: MoveSpec, counters: Any) -> None:
        super().__init__(spec.devices, counters)
        self._move = spec
        self._uri_b = parse_uri(f"ws://127.0.0.1:{spec.port_b}/")
        self._gate = asyncio.Semaphore(spec.devices.concurrency)
        self._moves: set[asyncio.Task[None]] = set()
        self._seen: set[str] = set()
        self._tasks: list[str] = []
        self._pushed_at: list[float] = []
        self._unique_latency_us: list[int] = []
        self._moved_at: list[float] = []
        self._retry_ms: list[int] = []
        self._duplicates = 0

    def _hello(self, index: int) -> bytes:
        spec = self._spec
        token = tokens.sign(spec.device_secret.encode(), spec.app_id, rid(index),
                            int(time.time()) + 86_400)
        return frames.encode(Hello(app=spec.app_id, rid=rid(index), token=token))

    async def _attempt(self, index: int, hello: bytes) -> str | None:
        return await self._open(index, hello, self._spec.port)

    async def _open(self, index: int, hello: bytes, port: int) -> str | None:
        """One connection attempt to ``port``: None once WELCOME came, else why not."""
        loop = asyncio.get_running_loop()
        welcomed = loop.create_future()
        made: list[Link] = []
        uri = self._uri if port == self._spec.port else self._uri_b

        def factory() -> Link:
            link = ByeLink(uri, hello, self, index, port)
            self._waiting[link] = welcomed
            made.append(link)
            return link

        source = self._spec.sources[index % len(self._spec.sources)]
        try:
            async with asyncio.timeout(self._spec.connect_timeout_s):
                await loop.create_connection(factory, "127.0.0.1", port, local_addr=(source, 0))
                await welcomed
        except (OSError, TimeoutError) as exc:
            for link in made:
                self._waiting.pop(link, None)
                link.abort()
            return type(exc).__name__ + (f" {exc}" if isinstance(exc, ConnectionError) else "")
        return None

    def on_lost(self, link: Link, reason: str) -> None:
        """See ``Listener.on_lost``: after BYE ``shutdown`` from node A, move to node B."""
        was_welcomed = link.welcomed
        super().on_lost(link, reason)
        if (isinstance(link, ByeLink) and was_welcomed and link.port == self._spec.port
                and link.bye is not None and link.bye.reason == ByeReason.SHUTDOWN):
            self._counters[BYES] += 1
            self._retry_ms.append(link.bye.retry_ms)
            task = asyncio.get_running_loop().create_task(
                self._to_b(link.index, link.bye.retry_ms))
            self._moves.add(task)
            task.add_done_callback(self._moves.discard)

    async def _to_b(self, index: int, retry_ms: int) -> None:
        await asyncio.sleep(retry_ms * self._move.retry_scale / 1000)
        hello = self._hello(index)
        for attempt in range(1, self._move.attempts_b + 1):
            async with self._gate:
                failure = await self._open(index, hello, self._move.port_b)
            if failure is None:
                self._moved_at.append(time.time())
                self._counters[MOVED] += 1
                return
            self._failures[f"to B: {failure}"] += 1
            self._retries += 1
            await asyncio.sleep(random.uniform(0.1, 0.3) * attempt)
        self._counters[MOVE_FAILED] += 1

    def on_push(self, link: Link, push: Push) -> None:
        """See ``Listener.on_push``: count a message id once."""
        super().on_push(link, push)
        if push.mid in self._seen:
            self._duplicates += 1
            return
        now = time.time()
        self._seen.add(push.mid)
        self._tasks.append(push.task)
        self._pushed_at.append(now)
        sent_us = push.msg.get("data", {}).get("t")
        if isinstance(sent_us, int):
            self._unique_latency_us.append(int(now * 1e6) - sent_us)
        self._counters[UNIQUE] += 1

    def report(self) -> Report:
        """``Devices.report`` plus the moves and the pushes seen since the last report."""
        out = super().report()
        out.update(moved_at=self._moved_at, pushed_at=self._pushed_at, tasks=self._tasks,
                   unique_latency_us=self._unique_latency_us, retry_ms=self._retry_ms,
                   duplicates=self._duplicates)
        self._moved_at, self._pushed_at, self._tasks = [], [], []
        self._unique_latency_us, self._retry_ms = [], []
        return out


def main_movers(spec: MoveSpec, counters: Any, conn: Connection) -> None:
    """Entry point of a mover generator process."""
    raise_nofile()
    uvloop.run(devices.serve(Movers(spec, counters), conn))


class Movements:
    """Everything the mover processes reported, accumulated."""

    def __init__(self) -> None:
        self.base = FleetReport()
        self.moved_at: list[float] = []
        self.pushed_at: list[float] = []
        self.tasks: set[str] = set()
        self.latency_us: list[int] = []
        self.retry_ms: list[int] = []
        self.duplicates = 0

    def add(self, reports: list[Report]) -> None:
        """Fold reports in (each holds the samples since the previous one)."""
        base = FleetReport()
        self.duplicates = 0
        for report in reports:
            base.add(report)
            self.moved_at += report["moved_at"]
            self.pushed_at += report["pushed_at"]
            self.tasks.update(report["tasks"])
            self.latency_us += report["unique_latency_us"]
            self.retry_ms += report["retry_ms"]
            self.duplicates += report["duplicates"]
        self.base = base


class MoverFleet:
    """``count`` mover devices in as many processes as they need (at least two)."""

    def __init__(self, port_a: int, port_b: int, app_id: str, secret: str, count: int,
                 retry_scale: float, concurrency: int) -> None:
        self.count = count
        processes = max(2 if count >= 1000 else 1, math.ceil(count / PER_PROCESS))
        share = math.ceil(count / processes)
        self._children = [
            Child(main_movers, MoveSpec(
                DeviceSpec(port=port_a, app_id=app_id, device_secret=secret, first=first,
                           count=min(share, count - first), sources=sources(k, 1),
                           concurrency=concurrency),
                port_b=port_b, retry_scale=retry_scale))
            for k, first in enumerate(range(0, count, share))
        ]
        self.seen = Movements()

    @property
    def pids(self) -> list[int]:
        """Process ids of the generators."""
        return [c.process.pid for c in self._children if c.process.pid is not None]

    def total(self, slot: int) -> int:
        """A counter summed over the processes."""
        return sum(c.count(slot) for c in self._children)

    async def report(self) -> Movements:
        """Everything so far."""
        self.seen.add(await asyncio.gather(*(c.ask("report") for c in self._children)))
        return self.seen

    async def stop(self) -> None:
        """Let the processes drop their connections and exit."""
        await asyncio.gather(*(c.stop() for c in self._children), return_exceptions=True)


async def progress(desc: str, total: int, count: Any, timeout_s: float) -> bool:
    """Wait with a progress bar until ``count()`` reaches ``total``; whether it did."""
    deadline = time.monotonic() + timeout_s
    with tqdm(total=total, desc=desc, mininterval=1) as bar:
        while time.monotonic() < deadline:
            done = count()
            bar.update(done - bar.n)
            if done >= total:
                return True
            await asyncio.sleep(0.1)
    return False


async def publish(kafka: AIOKafkaProducer, app: str, indexes: range,
                  partitions: tuple[int, ...]) -> None:
    """One push per device of ``indexes`` (PushFlag 1, lifetime 300 s), acknowledged."""
    pending = []
    for i in indexes:
        request = PushRequest(task_id=f"{app}-{i}", app_id=app, registration_ids=[rid(i)],
                              message=Message(title="bench", body="reconnect",
                                              data={"t": time.time_ns() // 1000}),
                              push_flag=1, lifetime_s=LIFETIME_S)
        partition = partitions[i % len(partitions)] if partitions else None
        pending.append(await kafka.send(topics.REQUESTS, encode_push_request(request),
                                        partition=partition))
    await asyncio.gather(*pending)


def _since(times: list[float], origin: float) -> dict[str, float]:
    return latency_ms([(t - origin) * 1000 for t in times])


async def measure(args: argparse.Namespace, size: int, router: Role,
                  partitions: tuple[int, ...], kafka: AIOKafkaProducer,
                  logs: Any) -> dict[str, Any]:
    """One size: connect N devices to A, publish half, SIGTERM A, publish half, measure."""
    app = f"bench-rec-{uuid.uuid4().hex[:8]}"
    secret = (await redisdata.create_app(app)).device_secret
    port_a, port_b = free_port(), free_port()
    nodes = [f"{app}-a", f"{app}-b"]
    node_a = Role(["gateway"], {"HERALD_NODE_ID": nodes[0], "HERALD_PORT": str(port_a)},
                  logs / f"gateway-a-{size}.log")
    node_b = Role(["gateway"], {"HERALD_NODE_ID": nodes[1], "HERALD_PORT": str(port_b)},
                  logs / f"gateway-b-{size}.log")
    fleet: MoverFleet | None = None
    try:
        await asyncio.gather(node_a.wait_port(port_a), node_b.wait_port(port_b))
        fleet = MoverFleet(port_a, port_b, app, secret, size, args.retry_scale,
                           args.concurrency)
        await progress("connecting to A", size,
                       lambda: fleet.total(Slot.CONNECTED) + fleet.total(Slot.FAILED), 120)
        connected_a = fleet.total(Slot.CONNECTED)
        pids = {"gateway_a": node_a.pid, "gateway_b": node_b.pid, "router": router.pid,
                **backend_pids()}
        quiet_before = await quiet([*pids.values(), *fleet.pids], timeout_s=30)
        decisions0 = router.metric("herald_router_decisions_total", by="decision")
        before = sample(pids)
        half = size // 2
        await publish(kafka, app, range(half), partitions)
        term_at = time.time()
        node_a.proc.send_signal(signal.SIGTERM)
        await publish(kafka, app, range(half, size), partitions)
        published_s = time.time() - term_at
        all_moved = await progress("moving to B", size,
                                   lambda: fleet.total(MOVED) + fleet.total(MOVE_FAILED),
                                   args.wait)
        all_pushed = await progress("pushes", size, lambda: fleet.total(UNIQUE),
                                    max(1.0, args.wait - (time.time() - term_at)))
        pids.pop("gateway_a")
        after = sample(pids)
        node_b.check()
        router.check()
        seen = await fleet.report()
        await node_a.stop(timeout_s=60)
        decisions1 = router.metric("herald_router_decisions_total", by="decision")
    finally:
        if fleet is not None:
            await fleet.stop()
        await asyncio.gather(node_a.stop(), node_b.stop())
        await redisdata.forget(app, nodes)
    missing = sorted(set(range(size)) - {int(t.rpartition("-")[2]) for t in seen.tasks})
    cpu = shares(after, before)
    return {
        "size": size, "connected_to_a": connected_a, "byes": fleet.total(BYES),
        "moved_to_b": fleet.total(MOVED), "move_failures": fleet.total(MOVE_FAILED),
        "all_moved": all_moved,
        "all_connected_to_b_s": round(max(seen.moved_at) - term_at, 3) if seen.moved_at
        else None,
        "reconnect_ms": _since(seen.moved_at, term_at),
        "all_received_s": round(max(seen.pushed_at) - term_at, 3) if seen.pushed_at
        else None,
        "received_after_term_ms": _since(seen.pushed_at, term_at),
        "produce_to_device_ms": latency_ms(seen.latency_us, scale=0.001),
        "published": size, "published_after_term_s": round(published_s, 3),
        "received": len(seen.tasks), "lost": len(missing), "all_received": all_pushed,
        "missing_sample": [rid(i) for i in missing[:10]],
        "duplicates": seen.duplicates,
        "bye_retry_ms": latency_ms(seen.retry_ms),
        "node_a_exit": node_a.proc.returncode,
        "router_decisions": {k: int(decisions1.get(k, 0) - decisions0.get(k, 0))
                             for k in decisions1 if decisions1.get(k, 0) - decisions0.get(k, 0)},
        "failed_attempts": dict(seen.base.failed_attempts),
        "connection_losses": dict(seen.base.losses),
        "cpu": cpu, "other_load_before_cores": quiet_before,
        "devices_cpu_s": round(seen.base.cpu_s, 2),
    }


async def run(args: argparse.Namespace, sizes: list[int]) -> list[dict[str, Any]]:
    """Start the router, then one pair of gateways per size."""
    logs = cli.workdir(SCENARIO)
    lag = await GroupLag(topics.ROUTER_GROUP, topics.REQUESTS, topics.FALLBACK).start()
    try:
        args.members_before = await lag.members()
        await lag.skip_backlog()
    finally:
        await lag.close()
    router = Role(["router"], {}, logs / "router.log")
    kafka = AIOKafkaProducer(bootstrap_servers=KAFKA, acks=1, linger_ms=2)
    runs = []
    try:
        partitions = await router.assignment(topics.REQUESTS)
        await kafka.start()
        for size in sizes:
            runs.append(await measure(args, size, router, partitions, kafka, logs))
            print({k: v for k, v in runs[-1].items() if k != "cpu"}, runs[-1]["cpu"])
    finally:
        await kafka.stop()
        await router.stop()
    return runs


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.reconnect``."""
    parser = cli.parser(__doc__ or "", "devices on the drained node")
    parser.add_argument("--wait", type=float, default=60.0,
                        help="seconds after SIGTERM to wait for moves and pushes [60]")
    parser.add_argument("--retry-scale", type=float, default=0.0,
                        help="wait BYE retry_ms times this before reconnecting [0: at once]")
    parser.add_argument("--concurrency", type=int, default=100,
                        help="handshakes in flight per generator process [100]")
    args = cli.prepare(argv, parser)
    sizes = cli.choose(args, "1000,5000,10000", "200")
    runs = asyncio.run(run(args, sizes))
    params = {"push_flag": 1, "lifetime_s": LIFETIME_S, "wait_s": args.wait,
              "retry_scale": args.retry_scale, "concurrency": args.concurrency,
              "drain_grace_s": "default (2)", "other_group_members": args.members_before}
    path = results.write(SCENARIO, cli.out_dir(args, SCENARIO), smoke=args.smoke,
                         params=params, runs=runs)
    print(f"result: {path}")
    if any(r["lost"] or not r["all_moved"] for r in runs):
        raise SystemExit("reconnect run lost pushes or devices")


if __name__ == "__main__":
    main()
