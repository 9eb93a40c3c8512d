"""Capped exponential backoff with full jitter: the one retry delay every role uses."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry ``attempt`` (1-based): uniform in [0, min(cap, base * 2**(attempt-1))]."""

    base_s: float = 0.1
    cap_s: float = 10.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before the given retry attempt."""
        ceiling = min(self.cap_s, self.base_s * (2 ** max(0, attempt - 1)))
        return random.uniform(0, ceiling)
