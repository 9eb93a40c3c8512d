"""Server role processes (``python -m herald ROLE``) and their cost, read from /proc."""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KAFKA = os.environ.get("HERALD_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
REDIS = os.environ.get("HERALD_REDIS_URL", "redis://127.0.0.1:6379/0")
_STATE = Path(__file__).resolve().parent.parent / "deploy" / "local" / ".state"
_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_PR_SET_PDEATHSIG = 1
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True, slots=True)
class Usage:
    """CPU seconds used so far and resident memory of one process, at one moment."""

    at: float
    cpu_s: float
    rss: int

    def cpu_share(self, earlier: Usage) -> float:
        """CPU used between ``earlier`` and this sample, as a share of one core."""
        return (self.cpu_s - earlier.cpu_s) / max(self.at - earlier.at, 1e-9)


def usage(pid: int) -> Usage:
    """Sample a process's CPU time (utime + stime) and RSS."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    with open(f"/proc/{pid}/statm") as f:
        rss_pages = int(f.read().split()[1])
    # Fields after the command name start at field 3 (state); utime and stime are 14 and 15.
    return Usage(time.monotonic(), (int(fields[11]) + int(fields[12])) / _TICK, rss_pages * _PAGE)


def machine_usage() -> Usage:
    """CPU time the whole machine spent busy (all cores, every process), as a ``Usage``."""
    with open("/proc/stat") as f:
        ticks = [int(t) for t in f.readline().split()[1:9]]
    idle = ticks[3] + ticks[4]
    return Usage(time.monotonic(), (sum(ticks) - idle) / _TICK, 0)


def listen_overflows() -> int:
    """Connections the kernel dropped because a listen queue was full (TcpExt ListenOverflows,
    machine-wide since boot)."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split(), strict=True))["ListenOverflows"])
    return 0


def sample(pids: dict[str, int]) -> dict[str, Usage]:
    """Usage of each named process, and of the whole machine (``"machine"``, in cores)."""
    return {**{name: usage(pid) for name, pid in pids.items()}, "machine": machine_usage()}


def shares(after: dict[str, Usage], before: dict[str, Usage]) -> dict[str, float]:
    """CPU share of one core of each named process between two samples."""
    return {name: round(after[name].cpu_share(before[name]), 3) for name in after}


def elsewhere(cpu: dict[str, float], generator_cores: float) -> float:
    """From ``shares`` of the roles, the backends and the machine: the cores busy with
    something else than them and our generators (``generator_cores``): someone else's work."""
    ours = sum(share for name, share in cpu.items() if name != "machine") + generator_cores
    return round(cpu["machine"] - ours, 2)


def other_load(pids: list[int], window_s: float = 2.0) -> float:
    """Cores the machine spends, over ``window_s``, on processes other than ``pids`` (ours)."""
    before = sample({str(pid): pid for pid in pids})
    time.sleep(window_s)
    after = sample({str(pid): pid for pid in pids})
    busy = shares(after, before)
    return round(busy.pop("machine") - sum(busy.values()), 2)


async def quiet(pids: list[int], *, limit: float = 0.3, timeout_s: float = 60.0) -> float:
    """Wait (at most ``timeout_s``) until processes other than ``pids`` use less than ``limit``
    cores, so that a measurement does not share the machine with someone else's work; the
    other load last seen, which the result records."""
    deadline = time.monotonic() + timeout_s
    while True:
        load = await asyncio.to_thread(other_load, [os.getpid(), *pids])
        if load < limit or time.monotonic() > deadline:
            return load
        print(f"waiting for the machine to quieten: {load} cores busy elsewhere")


class Sampler:
    """``sample`` of some processes every ``interval_s`` while running, so that a window can
    end at a moment known only afterwards (the last ACK of a broadcast)."""

    def __init__(self, pids: dict[str, int], interval_s: float = 0.25) -> None:
        self._pids = pids
        self._interval_s = interval_s
        #: (wall-clock time, sample), oldest first.
        self.samples: list[tuple[float, dict[str, Usage]]] = []

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            self.samples.append((time.time(), sample(self._pids)))
            await asyncio.sleep(self._interval_s)

    def at(self, wall: float) -> dict[str, Usage]:
        """The first sample taken at or after ``wall`` (time.time()), else the last one."""
        return next((s for t, s in self.samples if t >= wall), self.samples[-1][1])


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def backend_pids() -> dict[str, int]:
    """Pids of the local Redis and Kafka (from deploy/local/.state), where they run."""
    pids = {}
    for name in ("redis", "kafka"):
        try:
            pid = int((_STATE / f"{name}.pid").read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            continue
        pids[name] = pid
    return pids


def _die_with_parent() -> None:
    """In the child before exec: be killed when the scenario dies, however it dies."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Role:
    """One ``herald`` role as a child process; its JSON log goes to a file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self.metrics_port = free_port()
        full_env = {**os.environ, "HERALD_REDIS_URL": REDIS, "HERALD_KAFKA_BOOTSTRAP": KAFKA,
                    "HERALD_METRICS_PORT": str(self.metrics_port), **env}
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "herald", *args], stdout=log,
                                         stderr=subprocess.STDOUT, env=full_env,
                                         preexec_fn=_die_with_parent)

    @property
    def pid(self) -> int:
        """Process id of the role."""
        return self.proc.pid

    def usage(self) -> Usage:
        """CPU and RSS of the role now."""
        return usage(self.proc.pid)

    def _check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"herald {' '.join(self.args)} exited {self.proc.returncode}:"
                               f"\n{tail}")

    def check(self) -> None:
        """Raise if the role exited, or began to stop, without the benchmark asking it to (a
        signal from outside: the figures of this run would mean nothing)."""
        self._check_alive()
        if self.logged("draining") or self.logged("stopped"):
            raise RuntimeError(f"herald {' '.join(self.args)} (pid {self.pid}) was stopped "
                               "from outside the benchmark mid-run")

    def logged(self, event: str) -> list[dict[str, Any]]:
        """Every JSON line the role logged so far whose ``event`` is ``event``."""
        lines = []
        for raw in self.log_path.read_bytes().splitlines():
            if event.encode() in raw:
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if line.get("event") == event:
                    lines.append(line)
        return lines

    async def wait_log(self, event: str, timeout_s: float = 60.0) -> dict[str, Any]:
        """Wait for the role to log a JSON line whose ``event`` is ``event``; the first one."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive()
            if lines := self.logged(event):
                return lines[0]
            await asyncio.sleep(0.1)
        raise TimeoutError(f"herald {' '.join(self.args)} did not log {event!r} in {timeout_s}s")

    async def assignment(self, topic: str, settle_s: float = 3.0) -> tuple[int, ...]:
        """The partitions of ``topic`` the role's consumer holds, once its group has settled
        (no new assignment for ``settle_s``)."""
        await self.wait_log("partitions assigned")
        count = 0
        while len(lines := self.logged("partitions assigned")) != count:
            count = len(lines)
            await asyncio.sleep(settle_s)
        # A role may run several consumers (the router: requests and fan-out, in two groups),
        # each logging its own assignment: the newest line that names ``topic`` is this one's.
        for line in reversed(lines):
            held = [p.partition("/") for p in line.get("partitions", [])]
            if any(t == topic for t, _, _ in held):
                return tuple(sorted(int(n) for t, _, n in held if t == topic))
        return ()

    async def wait_port(self, port: int, timeout_s: float = 60.0) -> None:
        """Wait until the role accepts TCP connections on ``port``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            return
        raise TimeoutError(f"herald {' '.join(self.args)} did not listen on {port}")

    def metric(self, name: str, by: str = "") -> dict[str, float]:
        """One metric of the role, summed by the value of label ``by`` (``""``: in total)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        sums: dict[str, float] = {}
        for line in text.splitlines():
            series, _, value = line.rpartition(" ")
            metric, _, labels = series.partition("{")
            if metric == name:
                key = dict(_LABEL.findall(labels)).get(by, "")
                sums[key] = sums.get(key, 0.0) + float(value)
        return sums

    async def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM, then SIGKILL if the role has not exited within ``timeout_s``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.proc.wait, timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
