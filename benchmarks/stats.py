"""Small statistics for benchmark samples."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100) of ``values``; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def latency_ms(values: Sequence[float], scale: float = 1.0) -> dict[str, float]:
    """p50, p99, p99.9 and max of ``values`` times ``scale``, in milliseconds, rounded."""
    out = {}
    for name, q in (("p50", 50.0), ("p99", 99.0), ("p99_9", 99.9), ("max", 100.0)):
        out[name] = round(percentile(values, q) * scale, 3)
    return out
