"""Errors raised by Herald's decoders.

ProtoError
└── DecodeError   bytes that are not a valid frame or envelope; ``reason`` says why
"""


class ProtoError(Exception):
    """Root of every error raised by ``proto``."""


class DecodeError(ProtoError):
    """Input that does not decode to a valid frame or envelope.

    ``reason`` is a short human sentence that is safe to show to the sender.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
