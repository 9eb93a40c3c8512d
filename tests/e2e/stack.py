"""Starting the three roles of the walking skeleton as separate processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from herald.device import Device
from proto.envelopes import AppRecord
from tests.harness import Role, free_port


@dataclass
class Ports:
    gateway: int
    gateway_metrics: int
    router_metrics: int
    vendor_metrics: int


def gateway(logdir: Path, node: str, ports: Ports, name: str = "gateway",
            **env: str) -> Role:
    return Role(["gateway"], {"HERALD_NODE_ID": node, "HERALD_PORT": str(ports.gateway),
                              "HERALD_METRICS_PORT": str(ports.gateway_metrics),
                              "HERALD_DRAIN_GRACE_S": "0.3", **env},
                logdir / f"{name}.log")


def router(logdir: Path, ports: Ports, name: str = "router", **env: str) -> Role:
    return Role(["router"], {"HERALD_METRICS_PORT": str(ports.router_metrics), **env},
                logdir / f"{name}.log")


def vendor(logdir: Path, ports: Ports, url: str) -> Role:
    return Role(["vendor", "sandbox"], {"HERALD_SANDBOX_URL": url,
                                        "HERALD_METRICS_PORT": str(ports.vendor_metrics)},
                logdir / "vendor.log")


def ports() -> Ports:
    return Ports(free_port(), free_port(), free_port(), free_port())


@dataclass
class Online:
    """A gateway and a router, both ready, and the devices connected to the gateway."""

    ports: Ports
    roles: list[Role]
    devices: list[Device] = field(default_factory=list)

    async def device(self, app: AppRecord, **options: str) -> Device:
        """A device of ``app``, registered and connected (closed when the stack stops)."""
        device = Device(app.app_id, app.client_key, **options)
        self.devices.append(device)
        await device.connect(f"ws://127.0.0.1:{self.ports.gateway}")
        return device


@asynccontextmanager
async def online(logdir: Path, node: str) -> AsyncIterator[Online]:
    """Start a gateway (node ``node``) and a router and wait until both serve; on exit close
    the devices and stop the roles."""
    ports_ = ports()
    stack = Online(ports_, [gateway(logdir, node, ports_), router(logdir, ports_)])
    try:
        await stack.roles[0].wait_log("gateway listening")
        await stack.roles[1].wait_log("partitions assigned")
        yield stack
    finally:
        for device in stack.devices:
            await device.close()
        for role in stack.roles:
            await role.stop()
