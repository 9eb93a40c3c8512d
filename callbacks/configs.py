"""Apps' callback configs as the sender reads them: from the store, kept ``ttl_s``.

Every batch asks for the configs of the apps its events name, and most apps have none, so
the answer "no config" is kept as well as a config: a busy app costs one store read per
``ttl_s``, and a change (a new URL, other stages, a new secret) applies within that time. A
config the store cannot read is logged and counted once per ``ttl_s`` and treated as none,
since a retry would read the same bytes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

import structlog

from callbacks import metrics
from herald.store import Store
from proto.callbacks import CallbackConfig
from proto.errors import DecodeError

log = structlog.get_logger()

#: Apps remembered before the stale ones are dropped.
MAX_APPS = 100_000


class ConfigCache:
    """Callback configs per app, read from ``store`` at most once per ``ttl_s``."""

    def __init__(self, store: Store, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, tuple[CallbackConfig | None, float]] = {}

    async def get_many(self, app_ids: Iterable[str]) -> dict[str, CallbackConfig]:
        """The configs of those of ``app_ids`` that have one; raises what the store raises
        when it cannot be reached (caching nothing)."""
        now = self._clock()
        wanted = set(app_ids)
        stale = [a for a in wanted
                 if a not in self._entries or now - self._entries[a][1] >= self._ttl_s]
        read = await asyncio.gather(*(self._read(a) for a in stale))
        if len(self._entries) > MAX_APPS:
            # Apps seen once long ago need not stay: what is stale is read again anyway.
            self._entries = {a: e for a, e in self._entries.items()
                             if now - e[1] < self._ttl_s}
        for app_id, config in zip(stale, read, strict=True):
            self._entries[app_id] = (config, now)
        return {a: c for a in wanted if (c := self._entries[a][0]) is not None}

    async def _read(self, app_id: str) -> CallbackConfig | None:
        try:
            config = await self._store.get_callback(app_id)
        except DecodeError as err:
            metrics.CONFIG_LOOKUPS.labels("invalid").inc()
            log.error("invalid callback config; the app's events are not posted",
                      app_id=app_id, reason=err.reason)
            return None
        metrics.CONFIG_LOOKUPS.labels("none" if config is None else "found").inc()
        return config
