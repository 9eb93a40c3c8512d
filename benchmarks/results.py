"""Result files: one JSON per scenario run, with the machine and the commit measured."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
_REPO = Path(__file__).resolve().parent.parent
_LIBRARIES = ("websockets", "uvloop", "aiokafka", "redis", "hiredis", "msgspec", "msgpack",
              "httpx", "structlog", "tqdm", "matplotlib")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=_REPO, capture_output=True, text=True,
                          check=False).stdout.strip()


def machine() -> dict[str, Any]:
    """Cores, memory, Python and library versions of this machine."""
    with open("/proc/meminfo") as f:
        total_kib = int(f.readline().split()[1])
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"cores": os.cpu_count(), "memory_bytes": total_kib * 1024,
            "python": platform.python_version(), "kernel": platform.release(),
            "libraries": versions}


def write(scenario: str, out_dir: Path, *, smoke: bool, params: dict[str, Any],
          runs: list[dict[str, Any]]) -> Path:
    """Write ``<out_dir>/<scenario>-<timestamp>.json`` and return its path."""
    now = datetime.now(UTC)
    result = {
        "scenario": scenario, "timestamp": now.isoformat(timespec="seconds"), "smoke": smoke,
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "machine": machine(), "params": params, "sizes": [run["size"] for run in runs],
        "runs": runs,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{scenario}-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    tmp.rename(path)
    return path


def latest(scenario: str, directory: Path = RESULTS_DIR) -> dict[str, Any] | None:
    """The newest result of ``scenario`` in ``directory`` that is not a smoke run."""
    for path in sorted(directory.glob(f"{scenario}-*.json"), reverse=True):
        result: dict[str, Any] = json.loads(path.read_text())
        if not result.get("smoke"):
            result["file"] = path.name
            return result
    return None
