"""PNG plots of cost against size, one per scenario (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from benchmarks import targets

Runs = list[dict[str, Any]]
Panel = Callable[[Axes, Runs], None]


def _line(ax: Axes, runs: Runs, y: Callable[[dict[str, Any]], float], label: str) -> None:
    ax.plot([r["size"] for r in runs], [y(r) for r in runs], marker="o", label=label)


def _conn_rss(ax: Axes, runs: Runs) -> None:
    _line(ax, runs, lambda r: r["rss_per_conn_kib"], "RSS per connection")
    ax.axhline(targets.CONN_KIB, color="red", linestyle="--", label="target")
    ax.set(xlabel="connections", ylabel="KiB", title="gateway RSS per connection")
    ax.set_ylim(bottom=0)


def _conn_total(ax: Axes, runs: Runs) -> None:
    _line(ax, runs, lambda r: r["rss_held_mib"], "gateway RSS")
    ax.set(xlabel="connections", ylabel="MiB", title="gateway RSS, connections held")


def _conn_rate(ax: Axes, runs: Runs) -> None:
    _line(ax, runs, lambda r: r["connect_rate_per_s"], "connects/s")
    _line(ax, runs, lambda r: r["gateway_cpu_holding"] * 100, "gateway CPU % holding")
    ax.set(xlabel="connections", title="connect rate; idle CPU")


def _uni_latency(ax: Axes, runs: Runs) -> None:
    for q in ("p50", "p99", "p99_9"):
        _line(ax, runs, lambda r, q=q: r["latency_ms"][q], q.replace("_", "."))
    ax.axhline(targets.UNICAST_P50_MS, color="green", linestyle="--", label="p50 target")
    ax.axhline(targets.UNICAST_P99_MS, color="red", linestyle="--", label="p99 target")
    ax.set(xlabel="pushes/s", ylabel="ms", yscale="log", title="produce -> device latency")


def _cpu(roles: tuple[str, ...], xlabel: str) -> Panel:
    def panel(ax: Axes, runs: Runs) -> None:
        for role in roles:
            _line(ax, runs, lambda r, role=role: r["cpu"].get(role, 0.0) * 100, role)
        ax.set(xlabel=xlabel, ylabel="% of one core", title="CPU while measuring")
    return panel


def _router_rate(ax: Axes, runs: Runs) -> None:
    _line(ax, runs, lambda r: r["decisions_per_s"], "decisions/s")
    _line(ax, runs, lambda r: r["decisions_per_router_cpu_s"], "per router CPU-second")
    ax.axhline(targets.ROUTER_PER_S, color="red", linestyle="--", label="target")
    ax.set(xlabel="decisions", xscale="log", title="routing throughput")


def _vendor_rate(channel: str, target: float | None) -> Panel:
    def panel(ax: Axes, runs: Runs) -> None:
        _line(ax, runs, lambda r: r["requests_per_s"], "requests/s")
        _line(ax, runs, lambda r: r["requests_per_sender_cpu_s"], "per sender CPU-second")
        if target is not None:
            ax.axhline(target, color="red", linestyle="--", label="target")
        ax.set(xlabel="requests", ylabel="requests/s", title=f"{channel} sender throughput")
        ax.set_ylim(bottom=0)
    return panel


def _re_times(ax: Axes, runs: Runs) -> None:
    _line(ax, runs, lambda r: r["all_connected_to_b_s"], "all on node B")
    _line(ax, runs, lambda r: r["all_received_s"], "all pushes received")
    for q in ("p99", "p50"):
        _line(ax, runs, lambda r, q=q: r["reconnect_ms"][q] / 1000, f"reconnect {q}")
    ax.set(xlabel="devices", ylabel="s after SIGTERM", title="node drained under load")
    ax.set_ylim(bottom=0)


def _re_lost(ax: Axes, runs: Runs) -> None:
    _line(ax, runs, lambda r: r["lost"], "pushes lost")
    _line(ax, runs, lambda r: r["duplicates"], "duplicates (shown once)")
    ax.axhline(0, color="red", linestyle="--", label="target: 0 lost")
    ax.set(xlabel="devices", title="pushes lost while draining")


def _bc_times(ax: Axes, runs: Runs) -> None:
    _line(ax, runs, lambda r: (r["last_ack_ms"] or 0) / 1000, "last ACK")
    _line(ax, runs, lambda r: (r["last_receipt_ms"] or 0) / 1000, "last receipt")
    for q in ("p99", "p50"):
        _line(ax, runs, lambda r, q=q: r["latency_ms"][q] / 1000, f"receipt {q}")
    ax.axhline(targets.BROADCAST_S, color="red", linestyle="--",
               label=f"target at {targets.BROADCAST_DEVICES:,}")
    ax.set(xlabel="devices", ylabel="s after produce", title="one all-users push")
    ax.set_ylim(bottom=0)


def _bc_cost(ax: Axes, runs: Runs) -> None:
    for kind in ("machine", "gateways", "generators", "kafka", "routers", "redis"):
        _line(ax, runs, lambda r, kind=kind: r["cpu_us_per_delivery"][kind], kind)
    ax.axhline(targets.BROADCAST_CORES * targets.BROADCAST_S * 1e6 / targets.BROADCAST_DEVICES,
               color="red",
               linestyle="--", label="machine budget for the target")
    ax.set(xlabel="devices", ylabel="CPU µs per delivery",
           title="cost per delivery, produce -> last ACK")
    ax.set_ylim(bottom=0)


def _bc_rate(ax: Axes, runs: Runs) -> None:
    _line(ax, runs, lambda r: r["deliveries_per_s"], "deliveries/s")
    ax.axhline(targets.BROADCAST_DEVICES / targets.BROADCAST_S, color="red", linestyle="--",
               label=f"{targets.BROADCAST_DEVICES:,} in {targets.BROADCAST_S:g} s")
    ax.set(xlabel="devices", title="deliveries per second (N / last receipt)")
    ax.set_ylim(bottom=0)


PANELS: dict[str, tuple[Panel, ...]] = {
    "connections": (_conn_rss, _conn_total, _conn_rate),
    "unicast": (_uni_latency, _cpu(("gateway", "router", "kafka", "redis"), "pushes/s")),
    "router": (_router_rate, _cpu(("router", "kafka", "redis"), "decisions")),
    "vendor": (_vendor_rate("sandbox", None), _cpu(("sender", "endpoint", "kafka"), "requests")),
    "vendor_apns": (_vendor_rate("APNs", targets.APNS_PER_S),
                    _cpu(("sender", "endpoint", "kafka"), "requests")),
    "vendor_fcm": (_vendor_rate("FCM", None), _cpu(("sender", "endpoint", "kafka"), "requests")),
    "reconnect": (_re_times, _re_lost, _cpu(("gateway_b", "router", "kafka", "redis"), "devices")),
    "broadcast": (_bc_times, _bc_cost, _bc_rate),
}


def plot(scenario: str, runs: Runs, out_dir: Path) -> Path | None:
    """Draw ``scenario``'s panels for its measured runs; the PNG's path, or None if no runs."""
    runs = [r for r in runs if "skipped" not in r]
    if not runs:
        return None
    panels = PANELS[scenario]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2))
    for ax, panel in zip(axes, panels, strict=True):
        panel(ax, runs)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{scenario}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
