"""``python -m benchmarks.report``: regenerate ``benchmarks/RESULTS.md`` and the plots in
``benchmarks/plots/`` from the latest (non-smoke) result of each scenario."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import plots, targets
from benchmarks.results import RESULTS_DIR, latest

HERE = Path(__file__).resolve().parent
Run = dict[str, Any]
Column = tuple[str, Callable[[Run], object]]


def _pct(share: float) -> str:
    return f"{share * 100:.0f} %"


def _s(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.2f}"


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason}: {n:,}" for reason, n in counts.items()) or "-"


COLUMNS: dict[str, list[Column]] = {
    "connections": [
        ("connections", lambda r: f"{r['size']:,}"),
        ("never connected / lost", lambda r: f"{r['failed']} / {r['lost_while_held']}"),
        ("RSS before → held (MiB)", lambda r: f"{r['rss_before_mib']} → {r['rss_held_mib']}"),
        ("RSS per conn (KiB)", lambda r: f"**{r['rss_per_conn_kib']:.1f}**"),
        ("connects/s", lambda r: f"{r['connect_rate_per_s']:,.0f}"),
        ("connect p50 / p99 (ms)",
         lambda r: f"{r['connect_ms']['p50']:.0f} / {r['connect_ms']['p99']:.0f}"),
        ("listen queue overflows", lambda r: f"{r.get('listen_overflows', '-'):,}"),
        ("gateway CPU connecting", lambda r: _pct(r["gateway_cpu_connecting"])),
        ("gateway CPU holding", lambda r: _pct(r["gateway_cpu_holding"])),
        ("pings/s (held / heartbeat)", lambda r: f"{r['pings_per_s_holding']:,.0f}"),
        ("generators (CPU s)", lambda r: f"{r['generator_processes']} ({r['generator_cpu_s']})"),
        ("machine busy connecting (cores)",
         lambda r: r["backend_cpu_connecting"].get("machine", "")),
        ("busy elsewhere before (cores)", lambda r: r.get("other_load_before_cores", "-")),
        ("failed attempts (retried)", lambda r: _reasons(r["failed_attempts"])),
    ],
    "unicast": [
        ("pushes/s", lambda r: f"{r['rate_per_s']:,}"),
        ("seconds", lambda r: f"{r['duration_s']:g}"),
        ("sent / lost", lambda r: f"{r['sent']:,} / {r['lost']}"),
        ("p50 (ms)", lambda r: f"**{r['latency_ms']['p50']:.1f}**"),
        ("p99 (ms)", lambda r: f"**{r['latency_ms']['p99']:.1f}**"),
        ("p99.9 (ms)", lambda r: f"{r['latency_ms']['p99_9']:.1f}"),
        ("max (ms)", lambda r: f"{r['latency_ms']['max']:.0f}"),
        ("routed→device p50 / p99 (ms)", lambda r: f"{r['routed_to_device_ms']['p50']:.0f} / "
                                                   f"{r['routed_to_device_ms']['p99']:.0f}"),
        ("gateway CPU", lambda r: _pct(r["cpu"]["gateway"])),
        ("router CPU", lambda r: _pct(r["cpu"]["router"])),
        ("Kafka / Redis CPU", lambda r: f"{_pct(r['cpu'].get('kafka', 0))} / "
                                        f"{_pct(r['cpu'].get('redis', 0))}"),
        ("producer / devices CPU s", lambda r: f"{r['producer_cpu_s']} / {r['devices_cpu_s']}"),
        ("machine busy (cores)", lambda r: r["cpu"].get("machine", "")),
        ("busy elsewhere (cores)", lambda r: r.get("other_load_cores", "-")),
        ("group rebalances", lambda r: r.get("rebalances", "-")),
    ],
    "router": [
        ("decisions", lambda r: f"{r['decisions']:,}"),
        ("requests", lambda r: f"{r['requests']:,} x {r['ids_per_request']}"),
        ("first produce → lag 0 (s)", lambda r: r["elapsed_s"]),
        ("decisions/s", lambda r: f"**{r['decisions_per_s']:,.0f}**"),
        ("router CPU", lambda r: _pct(r["cpu"]["router"])),
        ("per router CPU-s", lambda r: f"{r['decisions_per_router_cpu_s']:,.0f}"),
        ("producing took (s)", lambda r: r["produce_s"]),
        ("Kafka / Redis CPU", lambda r: f"{_pct(r['cpu'].get('kafka', 0))} / "
                                        f"{_pct(r['cpu'].get('redis', 0))}"),
        ("machine busy (cores)", lambda r: r["cpu"].get("machine", "")),
        ("busy elsewhere (cores)", lambda r: r.get("other_load_cores", "-")),
        ("group rebalances", lambda r: r.get("rebalances", "-")),
        ("by decision", lambda r: ", ".join(f"{k} {v:,}" for k, v in r["by_decision"].items()
                                            if v)),
    ],
    "vendor": [
        ("requests", lambda r: f"{r['requests']:,} x {r['targets_per_request']}"),
        ("first produce → lag 0 (s)", lambda r: r["elapsed_s"]),
        ("requests/s", lambda r: f"**{r['requests_per_s']:,.0f}**"),
        ("endpoint saw /s", lambda r: f"{r['endpoint_requests_per_s']:,.0f}"),
        ("sender CPU", lambda r: _pct(r["cpu"]["sender"])),
        ("per sender CPU-s", lambda r: f"{r['requests_per_sender_cpu_s']:,.0f}"),
        ("endpoint CPU", lambda r: _pct(r["cpu"]["endpoint"])),
        ("Kafka CPU", lambda r: _pct(r["cpu"].get("kafka", 0))),
        ("machine busy (cores)", lambda r: r["cpu"].get("machine", "")),
        ("busy elsewhere (cores)", lambda r: r.get("other_load_cores", "-")),
        ("group rebalances", lambda r: r.get("rebalances", "-")),
        ("TCP connections opened", lambda r: f"{r['endpoint_connections']:,}"),
        ("outcomes", lambda r: ", ".join(f"{k} {v:,}" for k, v in r["outcomes"].items() if v)),
    ],
    "vendor_apns": [],  # the vendor columns, filled in below
    "reconnect": [
        ("devices", lambda r: f"{r['size']:,}"),
        ("BYE / on B / failed", lambda r: f"{r['byes']:,} / {r['moved_to_b']:,} / "
                                          f"{r['move_failures']}"),
        ("all on B (s)", lambda r: f"**{r['all_connected_to_b_s']}**"),
        ("reconnect p50 / p99 (ms)",
         lambda r: f"{r['reconnect_ms']['p50']:.0f} / {r['reconnect_ms']['p99']:.0f}"),
        ("all pushes (s)", lambda r: f"**{r['all_received_s']}**"),
        ("received / lost", lambda r: f"{r['received']:,} / **{r['lost']}**"),
        ("duplicates (shown once)", lambda r: r["duplicates"]),
        ("produce→device p50 / p99 (ms)",
         lambda r: f"{r['produce_to_device_ms']['p50']:.0f} / "
                   f"{r['produce_to_device_ms']['p99']:.0f}"),
        ("router decisions", lambda r: ", ".join(f"{k} {v:,}"
                                                 for k, v in r["router_decisions"].items())),
        ("gateway B / router CPU", lambda r: f"{_pct(r['cpu']['gateway_b'])} / "
                                             f"{_pct(r['cpu']['router'])}"),
        ("machine busy (cores)", lambda r: r["cpu"].get("machine", "")),
        ("node A exit", lambda r: r["node_a_exit"]),
    ],
    "broadcast": [
        ("devices", lambda r: f"{r['audience']:,}" + (
            f" ({r['with_presence']:,} with presence)"
            if r.get("with_presence", r["audience"]) < r["audience"] else "")),
        ("gateways (devices each)", lambda r: f"{r['gateways']} "
                                              f"({max(r['devices_per_gateway']):,})"),
        ("received / lost / duplicates", lambda r: f"{r['received']:,} / **{r['lost']}** / "
                                                   f"{r['duplicates']}"),
        ("first / last receipt (s)", lambda r: f"{_s(r['first_receipt_ms'])} / "
                                               f"**{_s(r['last_receipt_ms'])}**"),
        ("last ACK (s)", lambda r: f"**{_s(r['last_ack_ms'])}**"),
        ("deliveries/s", lambda r: f"**{r['deliveries_per_s']:,.0f}**"),
        ("p50 / p99 / max (ms)", lambda r: f"{r['latency_ms']['p50']:.0f} / "
                                           f"{r['latency_ms']['p99']:.0f} / "
                                           f"{r['latency_ms']['max']:.0f}"),
        ("router started / all routed (s)", lambda r: f"{_s(r['router_started_ms'])} / "
                                                      f"{_s(r['all_routed_ms'])}"),
        ("router decisions", lambda r: ", ".join(f"{k} {v:,}" for k, v in
                                                 (r["task"] or {}).get("decisions", {}).items())
         + (f" ({r['routed_here']:,} by our router)"
            if r.get("routed_here", r["audience"]) != r["audience"] else "")),
        ("gateway liveness lapsed (s)", lambda r: ", ".join(
            f"{k.removeprefix('gateway_')}: {v}" for k, v in r["liveness_lapsed_s"].items())
         or "-"),
        ("CPU µs per delivery, produce → last ACK: machine / gateways / router / Redis / "
         "Kafka / generators",
         lambda r: " / ".join(f"{r['cpu_us_per_delivery'][k]:.0f}"
                              for k in ("machine", "gateways", "routers", "redis", "kafka",
                                        "generators"))),
        ("machine busy (cores)", lambda r: r["cpu"].get("machine", "")),
        ("busy holding, before (cores)", lambda r: r["idle_cpu"].get("machine", "")),
        ("busy elsewhere (cores)", lambda r: r.get("other_load_cores", "-")),
        ("connect (s)", lambda r: r["connect_s"]),
        ("group rebalances", lambda r: r.get("rebalances", "-")),
    ],
}
COLUMNS["vendor_apns"] = COLUMNS["vendor"]
COLUMNS["vendor_fcm"] = [*COLUMNS["vendor"],
                         ("access tokens minted", lambda r: r["access_tokens_minted"])]
#: The APNs target is judged on ``vendor_apns``; the sandbox ``vendor`` result has no target;
#: ``vendor_fcm`` has none of its own and is shown beside the APNs one.
VERDICTS = {"connections": targets.connections, "unicast": targets.unicast,
            "router": targets.router, "vendor_apns": targets.vendor,
            "vendor_fcm": targets.vendor_fcm,
            "reconnect": targets.reconnect, "broadcast": targets.broadcast}
#: Command of a scenario whose module has another name.
COMMANDS = {"vendor_apns": "vendor --channel apns", "vendor_fcm": "vendor --channel fcm"}


def table(scenario: str, runs: list[Run]) -> list[str]:
    """A markdown table of the runs; skipped sizes say why."""
    columns = COLUMNS[scenario]
    lines = ["| " + " | ".join(name for name, _ in columns) + " |",
             "|" + " --- |" * len(columns)]
    for run in runs:
        if "skipped" in run:
            cells = [f"{run['size']:,}", f"skipped: {run['skipped']}"]
            cells += [""] * (len(columns) - 2)
        else:
            cells = [str(cell(run)) for _, cell in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def section(scenario: str, result: dict[str, Any] | None, plot_dir: Path) -> list[str]:
    """The part of RESULTS.md about one scenario."""
    lines = [f"## {scenario}", ""]
    if result is None:
        command = COMMANDS.get(scenario, scenario)
        return [*lines, f"No result yet: run `python -m benchmarks.{command}`.", ""]
    dirty = " (with uncommitted changes)" if result["dirty"] else ""
    params = ", ".join(f"{k} {v}" for k, v in result["params"].items())
    lines += [f"Commit measured: `{result['commit'][:12]}`{dirty}, {result['timestamp']}, "
              f"`results/{result['file']}`. Parameters: {params}.", ""]
    lines += [*table(scenario, result["runs"]), ""]
    png = plots.plot(scenario, result["runs"], plot_dir) if scenario in plots.PANELS else None
    if png is not None:
        lines += [f"![{scenario}](plots/{png.name})", ""]
    return lines


def render(results_dir: Path, plot_dir: Path) -> str:
    """The whole of RESULTS.md."""
    found = {name: latest(name, results_dir) for name in COLUMNS}
    verdicts = [VERDICTS[name](found[name]) for name in COLUMNS if name in VERDICTS]
    machine = next((r["machine"] for r in found.values() if r), None)
    lines = ["# Benchmark results", "",
             "Generated by `python -m benchmarks.report` from the latest result of each scenario "
             f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC); do not edit by hand. How to run: "
             "`benchmarks/README.md`. Profiles of the misses: `benchmarks/PROFILES.md`.", ""]
    if machine:
        libs = ", ".join(f"{k} {v}" for k, v in machine["libraries"].items() if v)
        lines += [f"Machine: {machine['cores']} cores, {machine['memory_bytes'] / 2**30:.0f} GiB, "
                  f"Linux {machine['kernel']}, Python {machine['python']}; {libs}. Load "
                  "generators, Redis and Kafka share the machine with the roles measured.", ""]
    lines += ["## Targets", "", "| target | status | measured |", "| --- | --- | --- |"]
    lines += [f"| {v.target} | **{v.status}** | {v.detail} |" for v in verdicts]
    lines.append("")
    for name, result in found.items():
        lines += section(name, result, plot_dir)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Write RESULTS.md and the plots."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR,
                        help="directory of result JSON files [benchmarks/results]")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md",
                        help="markdown file to write [benchmarks/RESULTS.md]; plots go to "
                             "plots/ beside it")
    args = parser.parse_args(argv)
    args.out.write_text(render(args.results, args.out.parent / "plots"))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
