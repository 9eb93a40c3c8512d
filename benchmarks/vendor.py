"""Scenario ``vendor``: vendor requests per second of one sender process.

A local HTTP endpoint (``benchmarks.sink``, its own process) stands in for the vendor, and
``herald vendor sandbox`` posts to it. For each size (vendor requests), a producer process
publishes that many vendor jobs of ``--targets`` device(s) each to the partitions of
``push.vendor.sandbox`` our sender holds, as fast as it can; the figure is the time from the
first produce until the sender's group lag is back to 0, with the rate the endpoint saw and the
sender's CPU.

``--channel apns`` runs ``herald vendor apns`` instead, against ``benchmarks.apns_sink`` (HTTP/2
over TLS, ``benchmarks.h2sink``; a self-signed certificate trusted through
``HERALD_VENDOR_CA_FILE``); the app's token-auth credentials (a fresh ES256 key) are stored
through ``RedisStore``, the jobs carry 64-hex device tokens, one APNs request per device. Its
results are scenario ``vendor_apns``.

``--channel fcm`` runs ``herald vendor fcm`` against ``benchmarks.fcm_sink`` (the same HTTP/2
over TLS, serving both Google's OAuth2 token endpoint and FCM v1's
``messages:send``); the app's service account (a fresh RSA key, ``token_uri`` on the endpoint)
is checked and stored as ``herald credentials set`` does, ``HERALD_VENDOR_URL`` points the
sends at the endpoint, the jobs carry FCM-shaped registration tokens, one FCM request per
device. Its results are scenario ``vendor_fcm``.

    python -m benchmarks.vendor [--channel sandbox|apns|fcm] [--sizes 10000,50000]
                                [--targets 1] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import apns_sink, cli, fcm_sink, redisdata, results
from benchmarks.apns_sink import ApnsJobs, ApnsSinkSpec
from benchmarks.child import Child
from benchmarks.fcm_sink import FcmJobs, FcmSinkSpec
from benchmarks.lag import GroupLag, publish_and_drain
from benchmarks.procs import (
    Role,
    backend_pids,
    elsewhere,
    free_port,
    quiet,
    sample,
    shares,
)
from benchmarks.producer import Bulk
from benchmarks.sink import SinkSpec, Slot
from benchmarks.sink import main as sink_main
from herald.devcert import self_signed
from herald.redis_store import RedisStore
from proto import keys, topics
from vendors.main import check_credentials

SCENARIO = "vendor"
#: Vendor jobs of each channel measured.
JOBS: dict[str, type[Bulk]] = {"sandbox": Bulk, "apns": ApnsJobs, "fcm": FcmJobs}
CHANNELS = tuple(JOBS)
#: Channels that send one request per device.
PER_DEVICE = ("apns", "fcm")
_REQUESTS = "herald_vendor_requests_total"


async def measure(size: int, args: argparse.Namespace, tag: str, sender: Role, sink: Child,
                  lag: GroupLag, partitions: tuple[int, ...]) -> dict[str, Any]:
    """Send ``size`` vendor requests through the sender and time it."""
    pids = {"sender": sender.pid, "endpoint": sink.process.pid or 0, **backend_pids()}
    quiet_before = await quiet(list(pids.values()))
    requests0, tokens0 = sink.count(Slot.REQUESTS), sink.count(Slot.TOKENS)
    connections0, before = sink.count(Slot.CONNECTIONS), sample(pids)
    results0 = sender.metric(_REQUESTS, by="result")
    await sink.ask("report")
    assigned0 = len(sender.logged("partitions assigned"))
    grants0 = sink.count(fcm_sink.GRANTS)
    spec = JOBS[args.channel]("vendor_jobs", tag, args.devices, size, args.targets,
                              f"{tag}-s{size}", partitions)
    produced, drained_at = await publish_and_drain(spec, lag, timeout_s=120 + size / 200)
    after, seen = sample(pids), await sink.ask("report")
    sender.check()
    requests = sink.count(Slot.REQUESTS) - requests0
    outcomes = {k: int(v - results0.get(k, 0.0))
                for k, v in sender.metric(_REQUESTS, by="result").items()}
    elapsed = drained_at - produced["first_send"]
    endpoint_span = max(seen["last_request"] - seen["first_request"], 1e-9)
    sender_cpu_s = after["sender"].cpu_s - before["sender"].cpu_s
    cpu = shares(after, before)
    window = after["machine"].at - before["machine"].at
    extra = ({"access_tokens_minted": sink.count(fcm_sink.GRANTS) - grants0}
             if args.channel == "fcm" else {})
    return {
        "size": size, "targets_per_request": args.targets, "requests": requests,
        "devices": sink.count(Slot.TOKENS) - tokens0,
        "outcomes": outcomes, "elapsed_s": round(elapsed, 3),
        "requests_per_s": round(requests / elapsed, 1),
        "endpoint_requests_per_s": round(requests / endpoint_span, 1),
        "sender_cpu_s": round(sender_cpu_s, 2),
        "requests_per_sender_cpu_s": round(requests / max(sender_cpu_s, 1e-9), 1),
        "endpoint_connections": sink.count(Slot.CONNECTIONS) - connections0,
        "produce_s": round(produced["last_send"] - produced["first_send"], 3),
        "producer_cpu_s": round(produced["cpu_s"], 2), "cpu": cpu,
        "other_load_before_cores": quiet_before,
        "other_load_cores": elsewhere(cpu, produced["cpu_s"] / window),
        "sender_rss_mib": round(after["sender"].rss / 2**20, 1),
        "rebalances": len(sender.logged("partitions assigned")) - assigned0, **extra,
    }


async def _store_credentials(tag: str, vendor: str, creds: dict[str, str]) -> None:
    """Check and store the app's credentials as ``herald credentials set`` does."""
    check_credentials(vendor, creds)
    store = RedisStore(redisdata.REDIS)
    try:
        await store.put_credentials(tag, vendor, creds)
    finally:
        await store.close()


async def _endpoint(vendor: str, port: int, tag: str,
                    folder: Path) -> tuple[Child, dict[str, str]]:
    """Start the vendor's endpoint, store the app's credentials; the sender's environment."""
    if vendor == "sandbox":
        return Child(sink_main, SinkSpec(port)), {
            "HERALD_SANDBOX_URL": f"http://127.0.0.1:{port}/push"}
    certfile, keyfile = map(str, self_signed(folder))
    url = f"https://127.0.0.1:{port}"
    env = {"HERALD_VENDOR_URL": url, "HERALD_VENDOR_CA_FILE": certfile}
    if vendor == "apns":
        creds, public_pem = apns_sink.credentials()
        await _store_credentials(tag, vendor, creds)
        sink = Child(apns_sink.main, ApnsSinkSpec(port, certfile, keyfile, public_pem))
        return sink, {**env, "HERALD_VENDOR_SANDBOX_URL": url}
    token_uri = f"{url}/token"
    creds, public_pem = fcm_sink.credentials(token_uri)
    await _store_credentials(tag, vendor, creds)
    sink = Child(fcm_sink.main, FcmSinkSpec(port, certfile, keyfile, public_pem, token_uri))
    return sink, env


async def _forget_credentials(tag: str, vendor: str) -> None:
    r = redisdata.client()
    try:
        await r.delete(keys.credentials(tag, vendor))
    finally:
        await r.aclose()


async def run(args: argparse.Namespace, sizes: list[int]) -> list[dict[str, Any]]:
    """Start the endpoint and the sender, then measure every size."""
    vendor = args.channel
    logs = cli.workdir(SCENARIO)
    tag = f"bench-vendor-{uuid.uuid4().hex[:8]}"
    port = free_port()
    folder = tempfile.TemporaryDirectory(prefix=f"herald-bench-{vendor}-")
    sink, env = await _endpoint(vendor, port, tag, Path(folder.name))
    jobs = JOBS[vendor]
    lag = await GroupLag(topics.vendor_group(vendor), topics.vendor_topic(vendor)).start()
    sender: Role | None = None
    runs = []
    try:
        args.members_before = await lag.members()
        await lag.skip_backlog()
        sender = Role(["vendor", vendor], env, logs / "vendor.log")
        partitions = await sender.assignment(topics.vendor_topic(vendor))
        lag.restrict(topics.vendor_topic(vendor), partitions)
        await publish_and_drain(jobs("vendor_jobs", tag, args.devices, 20, args.targets,
                                     f"{tag}-warm", partitions), lag, timeout_s=120)
        for size in sizes:
            run = await measure(size, args, tag, sender, sink, lag, partitions)
            if run["rebalances"]:  # another member came or went: once more, settled
                partitions = await sender.assignment(topics.vendor_topic(vendor))
                lag.restrict(topics.vendor_topic(vendor), partitions)
                run = await measure(size, args, tag, sender, sink, lag, partitions)
            runs.append(run)
            print(run)
    finally:
        if sender is not None:
            await sender.stop()
        await lag.close()
        await sink.stop()
        if vendor != "sandbox":
            await _forget_credentials(tag, vendor)
        await redisdata.forget(tag, [])  # the traces and stats the sender wrote
        folder.cleanup()
    return runs


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.vendor``."""
    parser = cli.parser(__doc__ or "", "vendor requests (jobs)")
    parser.add_argument("--targets", type=int, default=1,
                        help="devices per vendor request [1, as APNs sends]")
    parser.add_argument("--channel", choices=CHANNELS, default="sandbox",
                        help="vendor sender to measure [sandbox]; apns and fcm write "
                             "scenarios vendor_apns and vendor_fcm")
    args = cli.prepare(argv, parser)
    args.devices = 100_000
    sizes = cli.choose(args, "10000,50000", "200")
    if args.channel in PER_DEVICE and args.targets != 1:
        parser.error(f"{args.channel} sends one request per device: --targets must be 1")
    runs = asyncio.run(run(args, sizes))
    params = {"vendor": args.channel, "targets_per_request": args.targets,
              "other_group_members": args.members_before}
    scenario = SCENARIO if args.channel == "sandbox" else f"{SCENARIO}_{args.channel}"
    path = results.write(scenario, cli.out_dir(args, scenario), smoke=args.smoke,
                         params=params, runs=runs)
    print(f"result: {path}")
    if args.smoke and (not runs or any(r["requests"] != r["size"] for r in runs)):
        raise SystemExit("smoke run: the endpoint did not see every request")


if __name__ == "__main__":
    main()
