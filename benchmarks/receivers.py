"""A device generator process that tells a first receipt from a repeated one.

``devices.Devices`` counts every PUSH; a broadcast sends one message to each device, so the
scenario needs to know how many devices got it at least once (the rest are lost) and how many
PUSH frames were repeats (duplicates), per message id.
"""

from __future__ import annotations

from multiprocessing.connection import Connection
from typing import Any

import uvloop

from benchmarks import devices
from benchmarks.child import Report, raise_nofile
from benchmarks.devices import Devices, DeviceSpec
from benchmarks.link import Link
from proto.frames import Push

#: Shared counter of devices that got a message at least once, after the four of
#: ``devices.Slot``.
UNIQUE = 4


class Receivers(Devices):
    """``Devices`` that count each (device, message id) once."""

    def __init__(self, spec: DeviceSpec, counters: Any) -> None:
        super().__init__(spec, counters)
        # A device is its link: the generator never reconnects a device, and links are kept
        # (``Devices._links``) so an id is never reused.
        self._seen: set[tuple[int, str]] = set()
        self._duplicates = 0

    def on_push(self, link: Link, push: Push) -> None:
        """See ``Listener.on_push``: a repeat counts as a duplicate, not as a receipt."""
        key = (id(link), push.mid)
        if key in self._seen:
            self._duplicates += 1
            return
        self._seen.add(key)
        self._counters[UNIQUE] += 1
        super().on_push(link, push)

    def report(self) -> Report:
        """``Devices.report`` plus the duplicates so far."""
        return {**super().report(), "duplicates": self._duplicates}


def main(spec: DeviceSpec, counters: Any, conn: Connection) -> None:
    """Entry point of a receiver generator process."""
    raise_nofile()
    uvloop.run(devices.serve(Receivers(spec, counters), conn))
