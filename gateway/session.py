"""Per-connection state, without I/O: pending acks and the client frame budget."""

from __future__ import annotations

from dataclasses import dataclass, field

from herald.store import Held


@dataclass(frozen=True, slots=True)
class Pending:
    """A push written to a device and not yet acknowledged.

    ``frame`` is shared by every device of the same delivery, so keeping it costs a reference;
    it is what a fallback sends back to the router.
    """

    task_id: str
    msg_id: str
    frame: bytes
    push_flag: int
    expires_at_ms: int
    from_inbox: bool
    deadline: float


@dataclass(slots=True, eq=False)
class Session:
    """One device connection after HELLO."""

    held: Held
    last_seen: float
    #: Frames a client may send per second, and in one burst (token bucket).
    rate: float
    burst: float
    max_pending: int
    pending: dict[str, Pending] = field(default_factory=dict)
    _tokens: float = -1.0
    _refilled: float = 0.0

    @property
    def device(self) -> tuple[str, str]:
        """(app id, registration id): the key of the node's connection table."""
        return self.held.app_id, self.held.registration_id

    def allow_frame(self, now: float) -> bool:
        """Spend one frame of the budget; False once the client sends faster than allowed."""
        if self._tokens < 0:
            self._tokens, self._refilled = self.burst, now
        self._tokens = min(self.burst, self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def expect_ack(self, pending: Pending) -> Pending | None:
        """Remember a written push; returns the oldest one if it had to be forgotten for room."""
        self.pending[pending.msg_id] = pending
        if len(self.pending) > self.max_pending:
            return self.pending.pop(next(iter(self.pending)))
        return None

    def take_ack(self, msg_id: str) -> Pending | None:
        """The pending push an ACK settles, once; None for unknown or repeated acks."""
        return self.pending.pop(msg_id, None)

    def expire(self, msg_id: str, deadline: float) -> Pending | None:
        """Remove and return the push if it is still pending with this deadline."""
        pending = self.pending.get(msg_id)
        if pending is None or pending.deadline != deadline:
            return None
        del self.pending[msg_id]
        return pending

    def take_all(self) -> list[Pending]:
        """Every pending push (the connection is going away)."""
        pending, self.pending = list(self.pending.values()), {}
        return pending
