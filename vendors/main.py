"""Entry point of ``herald vendor NAME``: settings, wiring and signals."""

from __future__ import annotations

import asyncio
import os

from herald import logs, metrics
from herald.kafka_bus import KafkaBus
from herald.settings import VendorSettings
from vendors.client import VendorClient
from vendors.sandbox import SandboxClient
from vendors.sender import Sender

#: Vendor channels this build can send through.
VENDORS = ("sandbox",)


def make_client(name: str, settings: VendorSettings) -> VendorClient:
    """The client of vendor ``name``."""
    if name == "sandbox":
        return SandboxClient(settings.sandbox_url, settings.request_timeout_s)
    raise ValueError(f"unknown vendor {name!r}; known: {', '.join(VENDORS)}")


async def main(name: str, stop: asyncio.Event) -> None:
    """Run one sender of vendor ``name`` until ``stop`` is set."""
    settings = VendorSettings()
    log = logs.configure(settings.log_level, role="vendor", vendor=name, pid=os.getpid())
    client = make_client(name, settings)
    metrics.serve(settings.metrics_host, settings.metrics_port)
    bus = KafkaBus(settings.kafka_bootstrap, client_id=f"herald-vendor-{name}-{os.getpid()}")
    await bus.start()
    log.info("sender started")
    await Sender(settings, client, bus).run(stop)
    await bus.stop()
    await client.close()
    log.info("stopped")
