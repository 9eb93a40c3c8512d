"""Entry point of ``herald callbacks``: settings, wiring and signals."""

from __future__ import annotations

import asyncio
import logging
import os

from callbacks.poster import new_client
from callbacks.service import Callbacks
from herald import logs, metrics
from herald.runtime import bounded
from herald.settings import CallbacksSettings
from herald.wiring import backends


async def main(stop: asyncio.Event) -> None:
    """Run one callback sender until ``stop`` is set."""
    settings = CallbacksSettings()
    log = logs.configure(settings.log_level, role="callbacks", pid=os.getpid())
    # httpx logs every request at INFO with its URL, which may carry the app's own token;
    # posts are counted in metrics, and failures logged by app.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    metrics.serve(settings.metrics_host, settings.metrics_port)
    async with backends(settings, f"herald-callbacks-{os.getpid()}") as (store, bus):
        client = new_client(max(settings.request_timeout_s, settings.first_timeout_s))
        log.info("callbacks started")
        await Callbacks(settings, store, bus, client).run(stop)
        await bounded(client.aclose(), 5, "http")
    log.info("stopped")
