"""Starting the three roles of the walking skeleton as separate processes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
