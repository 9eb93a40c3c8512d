"""The ``herald`` command: one subcommand per long-running role."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from herald.settings import GatewaySettings, RouterSettings, VendorSettings, describe


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
    vendor = roles.add_parser("vendor", help="vendor channel sender", formatter_class=fmt,
                              description="Send offline pushes through one vendor channel.",
                              epilog=describe(VendorSettings))
    vendor.add_argument("name", help="vendor channel, e.g. sandbox")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and run the chosen role."""
    args = _parser().parse_args(argv)
    from herald.runtime import run

    if args.role == "gateway":
        from gateway.main import main as role
        run(role)
    elif args.role == "router":
        from router.main import main as role
        run(role)
    else:
        from vendors.main import VENDORS
        from vendors.main import main as vendor_main
        if args.name not in VENDORS:
            sys.exit(f"herald vendor: unknown vendor {args.name!r}; known: {', '.join(VENDORS)}")

        def role(stop: asyncio.Event) -> object:
            return vendor_main(args.name, stop)
        run(role)
