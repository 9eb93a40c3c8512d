"""The ``herald`` command: one subcommand per long-running role."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from herald.settings import (
    ApiSettings,
    CallbacksSettings,
    CommonSettings,
    GatewaySettings,
    ReceiptsSettings,
    RouterSettings,
    StatsSettings,
    VendorSettings,
    describe,
)
from proto.limits import ID_RE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="herald", description="Herald push service roles. Each runs until SIGTERM.")
    roles = parser.add_subparsers(dest="role", required=True, metavar="ROLE")
    fmt = argparse.RawDescriptionHelpFormatter
    roles.add_parser("gateway", help="websocket gateway node", formatter_class=fmt,
                     description="Hold device connections and deliver online pushes.",
                     epilog=describe(GatewaySettings))
    roles.add_parser("router", help="push router (Kafka consumer group)", formatter_class=fmt,
                     description="Route push requests to nodes and vendor channels.",
                     epilog=describe(RouterSettings))
    roles.add_parser("api", help="HTTP API for app backends", formatter_class=fmt,
                     description="Serve the HTTP API: apps, devices, accounts, tags, "
                                 "attributes, pushes and tasks; the OpenAPI document is at "
                                 "/openapi.json.",
                     epilog=describe(ApiSettings))
    roles.add_parser("stats", help="stats consumer (Kafka consumer group)", formatter_class=fmt,
                     description="Fold delivery events into task funnels, losses, traces "
                                 "and daily totals.",
                     epilog=describe(StatsSettings))
    roles.add_parser("callbacks", help="callback sender (Kafka consumer group)",
                     formatter_class=fmt,
                     description="Post the events apps asked for to their callback URLs, "
                                 "signed, in batches.",
                     epilog=describe(CallbacksSettings))
    roles.add_parser("receipts", help="vendor receipt endpoint", formatter_class=fmt,
                     description="Accept the delivery and click receipts vendors post back "
                                 "and turn them into events.",
                     epilog=describe(ReceiptsSettings))
    vendor = roles.add_parser("vendor", help="vendor channel sender", formatter_class=fmt,
                              description="Send offline pushes through one vendor channel.",
                              epilog=describe(VendorSettings))
    vendor.add_argument("name", help="vendor channel: sandbox, apns, fcm, huawei, honor, "
                        "harmony, xiaomi, oppo, vivo or meizu")
    app = roles.add_parser("app", help="create an app (prints its credentials as JSON)",
                           formatter_class=fmt, epilog=describe(CommonSettings))
    app.add_argument("action", choices=["create"])
    app.add_argument("app_id", help="1-64 characters of A-Z a-z 0-9 _ . -")
    creds = roles.add_parser(
        "credentials", help="store an app's credentials for a vendor channel",
        formatter_class=fmt, epilog=describe(CommonSettings),
        description="Store (or replace: rotate) an app's credentials for one vendor channel. "
                    "FILE is a JSON object of the vendor's fields (an FCM or HarmonyOS service "
                    "account file as downloaded; see the vendor's module for the others); "
                    "they are checked before they are stored. Senders use them within "
                    "HERALD_CREDENTIALS_TTL_S, without a restart. Values are never printed.")
    creds.add_argument("action", choices=["set"])
    creds.add_argument("app_id", help="an app created with `herald app create`")
    creds.add_argument("vendor", help="vendor channel, e.g. apns, fcm, huawei")
    creds.add_argument("--file", required=True, help="JSON file of the credentials; - = stdin")
    return parser


async def _create_app(app_id: str) -> int:
    from herald.apps import new_app
    from herald.redis_store import RedisStore

    if not ID_RE.match(app_id):
        print(f"herald app: invalid app id {app_id!r}", file=sys.stderr)
        return 2
    store = RedisStore(CommonSettings().redis_url)
    try:
        if await store.get_app(app_id) is not None:
            print(f"herald app: app {app_id!r} exists", file=sys.stderr)
            return 1
        record = new_app(app_id)
        await store.put_app(record)
    finally:
        await store.close()
    print(json.dumps({"app_id": record.app_id, "client_key": record.client_key,
                      "server_secret": record.server_secret}))
    return 0


def _read_credentials(path: str) -> dict[str, str]:
    """The flat string mapping in the JSON file ``path``: other scalars as their JSON text
    (``true``, ``3``), so that a vendor's key file can be stored as downloaded."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    try:
        loaded = json.loads(text)
    except ValueError:
        raise ValueError("the file is not JSON") from None
    if not isinstance(loaded, dict):
        raise ValueError("the file must hold a JSON object")
    fields: dict[str, str] = {}
    for key, value in loaded.items():
        if isinstance(value, dict | list):
            raise ValueError(f"field {key!r} must be a string, number or boolean")
        fields[key] = value if isinstance(value, str) else json.dumps(value)
    return fields


async def _set_credentials(app_id: str, vendor: str, path: str) -> int:
    from herald.redis_store import RedisStore
    from vendors.main import check_credentials

    try:
        credentials = _read_credentials(path)
        check_credentials(vendor, credentials)
    except (OSError, ValueError) as exc:
        # ValueErrors name the field, never its value.
        print(f"herald credentials: {exc}", file=sys.stderr)
        return 2
    store = RedisStore(CommonSettings().redis_url)
    try:
        if await store.get_app(app_id) is None:
            print(f"herald credentials: no app {app_id!r}", file=sys.stderr)
            return 1
        await store.put_credentials(app_id, vendor, credentials)
    finally:
        await store.close()
    print(json.dumps({"app_id": app_id, "vendor": vendor, "fields": sorted(credentials)}))
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and run the chosen role."""
    args = _parser().parse_args(argv)
    from herald.runtime import run

    if args.role == "app":
        sys.exit(asyncio.run(_create_app(args.app_id)))
    if args.role == "credentials":
        sys.exit(asyncio.run(_set_credentials(args.app_id, args.vendor, args.file)))
    if args.role == "gateway":
        from gateway.main import main as role
        run(role)
    elif args.role == "router":
        from router.main import main as role
        run(role)
    elif args.role == "api":
        from router.api.main import main as role
        run(role)
    elif args.role == "stats":
        from stats.main import main as role
        run(role)
    elif args.role == "callbacks":
        from callbacks.main import main as role
        run(role)
    elif args.role == "receipts":
        from vendors.receipts.main import main as role
        run(role)
    else:
        from vendors.main import VENDORS
        from vendors.main import main as vendor_main
        if args.name not in VENDORS:
            sys.exit(f"herald vendor: unknown vendor {args.name!r}; known: {', '.join(VENDORS)}")

        def role(stop: asyncio.Event) -> object:
            return vendor_main(args.name, stop)
        run(role)
