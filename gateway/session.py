"""Per-connection state, without I/O: what the server knows about one device's socket."""

from __future__ import annotations

from dataclasses import dataclass, field

from herald.store import Held

#: Pushes awaiting an ACK per connection; beyond it the oldest is forgotten (and counted).
MAX_PENDING = 256


@dataclass(slots=True, eq=False)
class Session:
    """One device connection after HELLO. ``pending`` maps message id -> task id."""

    held: Held
    last_seen: float
    pending: dict[str, str] = field(default_factory=dict)

    @property
    def device(self) -> tuple[str, str]:
        """(app id, registration id): the key of the node's connection table."""
        return self.held.app_id, self.held.registration_id

    def expect_ack(self, msg_id: str, task_id: str) -> bool:
        """Remember a written push; False if an older one had to be forgotten to make room."""
        self.pending[msg_id] = task_id
        if len(self.pending) > MAX_PENDING:
            del self.pending[next(iter(self.pending))]
            return False
        return True

    def take_ack(self, msg_id: str) -> str | None:
        """The task of an acknowledged message, once; None for unknown or repeated acks."""
        return self.pending.pop(msg_id, None)
