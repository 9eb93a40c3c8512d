"""What the vendor tests share: a clock the test moves, job builders, result summaries."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from proto.envelopes import VendorJob, VendorTarget
from proto.message import Message
from vendors.client import TargetResult


class Clock:
    """A clock the test moves by hand; the client and the fake server both read it."""

    def __init__(self, now: float) -> None:
        self.start = now
        self.now = now

    def __call__(self) -> float:
        return self.now

    def at_minute(self, minute: float) -> None:
        """Set the time to ``minute`` minutes after the start."""
        self.now = self.start + minute * 60


HELLO = Message(title="Hi", body="There")


def job_factory(*, task_id: str = "t1", msg_id: str = "m1", message: Message = HELLO,
                app_id: str = "app") -> Callable[..., VendorJob]:
    """A builder of jobs for targets ``rid-<token>``, with a module's ids and default message."""
    default = message

    def job(*tokens: str, message: Message | None = None, expires_at_ms: int = 0) -> VendorJob:
        return VendorJob(app_id=app_id, task_id=task_id, msg_id=msg_id,
                         message=message or default,
                         targets=[VendorTarget(f"rid-{t}", t) for t in tokens],
                         expires_at_ms=expires_at_ms)

    return job


def outcomes(results: Sequence[TargetResult]) -> list[tuple[str, str, bool]]:
    """(registration id, error, token_invalid) of each result."""
    return [(r.registration_id, r.error, r.token_invalid) for r in results]
