"""Apps' vendor credentials as a sender reads them: from the store, cached for a short while.

One sender serves every app of its vendor, so it reads each job's app's credentials through
``CredentialCache``: kept ``ttl_s`` (30 s by default) after they were read, so that a rotation
(``herald credentials set``) applies within that time without a restart, and so that a burst of
jobs for one app costs one store read (concurrent misses share it). An app without credentials
is remembered as such for the same time.

Secrets never reach a log line: the mapping is held as ``Secrets``, whose repr names the fields
and hides the values, so that even a log of the mapping by mistake shows no secret.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from herald.store import Store


class Secrets(Mapping[str, str]):
    """A read-only credential mapping whose repr shows field names only."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Secrets({sorted(self._values)})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class _Entry:
    credentials: Secrets | None
    read_at: float


class CredentialCache:
    """Credentials of ``vendor`` per app, read from ``store`` at most once per ``ttl_s``."""

    def __init__(self, store: Store, vendor: str, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._vendor = vendor
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._reading: dict[str, asyncio.Future[_Entry]] = {}

    async def get(self, app_id: str) -> Secrets | None:
        """The app's credentials, or None when it has none for this vendor.

        Raises what the store raises (unreachable, or unreadable credentials) and caches
        nothing then, so that the next job reads again.
        """
        entry = self._entries.get(app_id)
        if entry is not None and self._clock() - entry.read_at < self._ttl_s:
            return entry.credentials
        reading = self._reading.get(app_id)
        if reading is None:
            reading = asyncio.ensure_future(self._read(app_id))
            self._reading[app_id] = reading
        # A job cancelled while waiting must not cancel the read other jobs wait for.
        return (await asyncio.shield(reading)).credentials

    async def _read(self, app_id: str) -> _Entry:
        try:
            stored = await self._store.get_credentials(app_id, self._vendor)
            entry = _Entry(Secrets(stored) if stored is not None else None, self._clock())
            self._entries[app_id] = entry
            return entry
        finally:
            del self._reading[app_id]
