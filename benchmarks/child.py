"""Generator processes: a spawned child per generator, steered through a pipe.

The parent keeps a ``Child`` (process, shared counters, control pipe). The child runs its own
event loop and calls ``serve_commands``: it answers ``"report"`` with a dict of figures (its CPU
time included) and ends on ``"stop"`` or when the parent goes away.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import resource
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

Report = dict[str, Any]
#: How many counters a child shares with its parent (each generator names its own slots).
COUNTERS = 8

_ctx = mp.get_context("spawn")


def cpu_seconds() -> float:
    """User plus system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raise_nofile() -> None:
    """Raise this process's open-file soft limit to its hard limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Child:
    """A generator process seen from the scenario."""

    def __init__(self, target: Callable[..., None], spec: object) -> None:
        self.counters: Any = _ctx.Array("q", COUNTERS, lock=False)
        self._conn, child_conn = _ctx.Pipe()
        self.process: BaseProcess = _ctx.Process(target=target, args=(spec, self.counters,
                                                                      child_conn), daemon=True)
        self.process.start()
        child_conn.close()

    def count(self, slot: int) -> int:
        """One shared counter."""
        return int(self.counters[slot])

    async def ask(self, command: str, timeout_s: float = 60.0) -> Report:
        """Send ``command`` and wait for the child's report."""
        return await asyncio.to_thread(self._ask, command, timeout_s)

    def _ask(self, command: str, timeout_s: float) -> Report:
        if not self.process.is_alive():
            raise RuntimeError(f"generator {self.process.pid} died "
                               f"(exit code {self.process.exitcode})")
        self._conn.send(command)
        if not self._conn.poll(timeout_s):
            raise TimeoutError(f"generator {self.process.pid} did not answer {command!r}")
        reply: Report = self._conn.recv()
        return reply

    async def stop(self, timeout_s: float = 30.0) -> Report:
        """Ask for a last report, let the child end, kill it if it lingers."""
        try:
            return await self.ask("stop", timeout_s)
        finally:
            await asyncio.to_thread(self.process.join, timeout_s)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()


async def serve_commands(conn: Connection, report: Callable[[], Report]) -> None:
    """Answer the parent's commands until it says ``"stop"`` or closes the pipe.

    The pipe stays blocking (a report of many samples is larger than the pipe's buffer); a
    thread waits for the next command.
    """
    while True:
        try:
            command = await asyncio.to_thread(conn.recv)
        except (EOFError, OSError):
            return
        conn.send({**report(), "cpu_s": cpu_seconds()})
        if command == "stop":
            return
