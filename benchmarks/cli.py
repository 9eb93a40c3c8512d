"""What every scenario command shares: its options, its limits, and where results go."""

from __future__ import annotations

import argparse
import signal
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.child import raise_nofile
from benchmarks.results import RESULTS_DIR


def parser(doc: str, sizes_help: str) -> argparse.ArgumentParser:
    """A scenario's argument parser with ``--sizes``, ``--smoke`` and ``--out``."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", help=f"comma-separated sizes: {sizes_help}")
    parser.add_argument("--smoke", action="store_true",
                        help="hundreds of devices for seconds (CI); results go to a temp dir")
    parser.add_argument("--out", type=Path,
                        help=f"directory for the result JSON [{RESULTS_DIR}, or a temp dir "
                             "with --smoke]")
    return parser


def sizes(text: str, parse: Callable[[str], int] = int) -> list[int]:
    """``"1000,10000"`` -> ``[1000, 10000]``; ``parse`` reads one item."""
    return [parse(item.strip()) for item in text.split(",") if item.strip()]


def choose(args: argparse.Namespace, full: str, smoke: str,
           parse: Callable[[str], int] = int) -> list[int]:
    """The sizes to run: ``--sizes``, else the smoke or the full defaults."""
    return sizes(args.sizes or (smoke if args.smoke else full), parse)


def out_dir(args: argparse.Namespace, scenario: str) -> Path:
    """Where this run's result goes: ``--out``, a temp dir for smoke runs, else results/."""
    if args.out is not None:
        return Path(args.out)
    if args.smoke:
        return Path(tempfile.mkdtemp(prefix=f"herald-bench-{scenario}-"))
    return RESULTS_DIR


def workdir(scenario: str) -> Path:
    """A fresh temp directory for the role logs of this run."""
    path = Path(tempfile.mkdtemp(prefix=f"herald-bench-{scenario}-logs-"))
    print(f"role logs: {path}")
    return path


def prepare(argv: Sequence[str] | None, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line, raise the open-file limit the roles will inherit, and make
    SIGTERM interrupt the run."""
    args = parser.parse_args(argv)
    raise_nofile()
    # SIGTERM stops a run like Ctrl-C does: the scenario's clean-up (roles, Redis keys) runs.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    return args
