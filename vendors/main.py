"""Entry point of ``herald vendor NAME``: settings, wiring and signals."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import ssl
from collections.abc import Callable, Mapping
from typing import Any

from herald import logs, metrics
from herald.runtime import bounded
from herald.settings import VendorSettings
from herald.wiring import backends
from vendors import apns, fcm, harmony, honor, huawei, meizu, oppo, vivo, xiaomi
from vendors.client import VendorClient
from vendors.sandbox import SandboxClient
from vendors.sender import Sender

#: Client class of every vendor channel but the sandbox, by vendor id.
CLIENTS: dict[str, type[VendorClient]] = {
    "apns": apns.ApnsClient, "fcm": fcm.FcmClient, "huawei": huawei.HuaweiClient,
    "honor": honor.HonorClient, "harmony": harmony.HarmonyClient,
    "xiaomi": xiaomi.XiaomiClient, "oppo": oppo.OppoClient, "vivo": vivo.VivoClient,
    "meizu": meizu.MeizuClient,
}
#: How each vendor reads an app's stored credentials; ``ValueError`` names a bad field.
CREDENTIALS: dict[str, Callable[[Mapping[str, str]], object]] = {
    "apns": apns.Credentials.from_mapping, "fcm": fcm.Credentials.from_mapping,
    "huawei": huawei.Credentials.from_mapping, "honor": honor.Credentials.from_mapping,
    "harmony": harmony.Credentials.from_mapping, "xiaomi": xiaomi.Credentials.from_mapping,
    "oppo": oppo.Credentials.from_mapping, "vivo": vivo.Credentials.from_mapping,
    "meizu": meizu.Credentials.from_mapping,
}
#: Vendor channels this build can send through.
VENDORS = ("sandbox", *CLIENTS)


def make_client(name: str, settings: VendorSettings) -> VendorClient:
    """The client of vendor ``name``, pointed where the settings say.

    ``vendor_url``, ``vendor_auth_url`` and ``vendor_sandbox_url`` replace the vendor's hosts
    when set; setting one the vendor does not take is a configuration error, not ignored.
    """
    if name == "sandbox":
        return SandboxClient(settings.sandbox_url, settings.request_timeout_s)
    client = CLIENTS.get(name)
    if client is None:
        raise ValueError(f"unknown vendor {name!r}; known: {', '.join(VENDORS)}")
    verify: ssl.SSLContext | bool = True
    if settings.vendor_ca_file:
        verify = ssl.create_default_context(cafile=settings.vendor_ca_file)
    options: dict[str, Any] = {"timeout_s": settings.request_timeout_s, "verify": verify}
    takes = inspect.signature(client).parameters
    for parameter, value, setting in (
            ("base_url", settings.vendor_url, "HERALD_VENDOR_URL"),
            ("auth_url", settings.vendor_auth_url, "HERALD_VENDOR_AUTH_URL"),
            ("sandbox_url", settings.vendor_sandbox_url, "HERALD_VENDOR_SANDBOX_URL")):
        if not value:
            continue
        if parameter not in takes:
            raise ValueError(f"{setting} is set, but vendor {name} has no such endpoint")
        options[parameter] = value
    return client(**options)


def check_credentials(name: str, credentials: Mapping[str, str]) -> None:
    """Raise ``ValueError`` (naming the field, never a value) if ``name`` cannot use them."""
    parse = CREDENTIALS.get(name)
    if parse is None:
        raise ValueError(f"vendor {name!r} takes no credentials; known: {', '.join(CREDENTIALS)}")
    parse(credentials)


async def main(name: str, stop: asyncio.Event) -> None:
    """Run one sender of vendor ``name`` until ``stop`` is set."""
    settings = VendorSettings()
    log = logs.configure(settings.log_level, role="vendor", vendor=name, pid=os.getpid())
    # httpx logs every request at INFO with its URL, which names device tokens.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    client = make_client(name, settings)
    metrics.serve(settings.metrics_host, settings.metrics_port)
    async with backends(settings, f"herald-vendor-{name}-{os.getpid()}") as (store, bus):
        log.info("sender started")
        await Sender(settings, client, bus, store).run(stop)
    await bounded(client.close(), 5, "vendor connections")
    log.info("stopped")
