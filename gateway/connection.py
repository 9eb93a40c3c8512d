"""The gateway's websocket connection: ACKs and PINGs are settled where their frame is read.

websockets' asyncio ``Connection`` hands every data frame to an ``Assembler`` queue and wakes
the connection's handler task to read it. In a broadcast nearly every frame a device sends is
the few-byte ACK of a push, and that task switch and queue cost more than settling the ACK.
``InlineConnection`` settles such frames in the event callback itself once the session is
established, and leaves every other frame (and every frame while the handler task still has
one to finish) to the handler task, in order, as before.

Reading the ACK's frame costs more again in websockets' generator-based ``Frame.parse``. So
``data_received`` first takes, itself, the complete, final, masked binary frames of at most
125 bytes at the start of what arrived, but only while websockets' sans-I/O parser provably
waits at a frame boundary with nothing buffered and no extension negotiated: skipping the
parser is then exactly what it would have done with those frames. Anything else (a longer,
fragmented, unmasked or control frame, a frame cut in two) and everything after it goes to
the parser, which is then still at a frame boundary.

It overrides websockets' internal ``Connection.process_event`` and ``data_received`` and reads
the sans-I/O parser's state: websockets is pinned below 18 in ``pyproject.toml`` for this, as
for ``gateway/link.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from websockets.asyncio.server import ServerConnection
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import Event, Protocol, State
from websockets.streams import StreamReader
from websockets.typing import Data

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

_BINARY = Opcode.BINARY
_TEXT = Opcode.TEXT
_OPEN = State.OPEN
#: Between two frames, ``Protocol.parse`` waits in ``StreamReader.at_eof``.
_PARSE = Protocol.parse.__code__
_AT_EOF = StreamReader.at_eof.__code__
#: FIN set, no RSV bit, opcode BINARY.
_FIN_BINARY = 0x82
#: A client's frames are masked; a 7-bit length of 126 or 127 announces a longer one.
_MASKED = 0x80
_SHORT = 126

#: Settles one complete binary message of an established session inline (given the target
#: of ``settle_with`` and the message); returns False to leave it to the handler task, and
#: must then have changed nothing.
Settle = Callable[[Any, bytes], bool]


class InlineConnection(ServerConnection):
    """A server connection that hands complete binary messages to ``settle`` first.

    ``settle`` is a class attribute (``connection_class`` makes one class per gateway), so a
    connection holds only three slots more than websockets' own.
    """

    __slots__ = ("_backlog", "_holding", "_target")

    settle: ClassVar[Settle]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._target: Any = None
        #: Messages given to the handler task (through the Assembler) and not yet finished:
        #: while it has one, later frames queue behind it, so they keep their order.
        self._backlog = 0
        #: Whether the handler task holds a message it has not finished (it finishes it when
        #: it asks for the next one).
        self._holding = False

    def settle_with(self, target: Any) -> None:
        """Settle frames inline for ``target`` from now on (None: stop)."""
        self._target = target

    def recv(self, decode: bool | None = None) -> Awaitable[Data]:  # type: ignore[override]
        """The next message for the handler task (see ``Connection.recv``).

        A plain method returning websockets' coroutine: a coroutine of its own would stay
        suspended in every idle connection (a third of a KiB each)."""
        if self._holding:
            self._backlog -= 1
        # The message this call returns is finished when the handler asks for the next one;
        # a call that raises instead (the connection closed, no HELLO in time) ends the
        # handler, which asks for nothing more.
        self._holding = True
        return super().recv(decode)

    def data_received(self, data: bytes) -> None:
        """Take the short binary frames at the start of ``data`` if the parser is between
        frames; the rest goes to websockets, then every frame is processed in order."""
        if self._target is None or not self._between_frames():
            super().data_received(data)
            return
        # Protocol.parse's limit for a frame outside a fragmented message.
        limit = self.protocol.max_message_size
        fragment = self.protocol.max_fragment_size
        if fragment is not None and (limit is None or fragment < limit):
            limit = fragment
        payloads: list[bytes] = []
        end, size = 0, len(data)
        while size - end >= 6 and data[end] == _FIN_BINARY and data[end + 1] & _MASKED:
            length = data[end + 1] & 0x7F
            start = end + 6
            if length >= _SHORT or start + length > size or (limit is not None
                                                             and length > limit):
                break
            payloads.append(apply_mask(data[start:start + length], data[end + 2:start]))
            end = start + length
        if not payloads:
            super().data_received(data)
            return
        events: list[Event] = []
        if end < size:
            # The same steps as Connection.data_received, so that the frames parsed here are
            # processed after the rest is parsed, as they would have been.
            self.protocol.receive_data(data[end:])
            events = self.protocol.events_received()
            try:
                self.send_data()
            except Exception as exc:
                self.set_connection_exc(exc)
            if (self.protocol.close_expected() and self.close_deadline is None
                    and self.close_timeout is not None):
                self.close_deadline = self.loop.time() + self.close_timeout
        for payload in payloads:
            self._binary(payload, None)
        for event in events:
            self.process_event(event)

    def _between_frames(self) -> bool:
        """Whether websockets' parser waits for the first byte of a frame, with nothing
        buffered, no fragmented message open and no extension that would change frames."""
        protocol = self.protocol
        if (protocol.state is not _OPEN or protocol.reader.buffer
                or protocol.current_size is not None or protocol.extensions):
            return False
        # The parser is a chain of generators (ServerProtocol.parse delegates to
        # Protocol.parse): between frames its innermost is at_eof, called by Protocol.parse
        # (after a close, discard() calls at_eof too).
        outer, inner = None, protocol.parser
        while (below := getattr(inner, "gi_yieldfrom", None)) is not None:
            outer, inner = inner, below
        return (getattr(inner, "gi_code", None) is _AT_EOF
                and getattr(outer, "gi_code", None) is _PARSE)

    def process_event(self, event: Event) -> None:
        """Settle a complete binary message inline if ``settle`` takes it, else queue it."""
        if self._target is not None:
            assert isinstance(event, Frame)
            if event.opcode is _BINARY and event.fin:
                self._binary(bytes(event.data), event)
                return
            if event.opcode is _TEXT or event.opcode is _BINARY:
                self._backlog += 1
        elif isinstance(event, Frame) and event.opcode in (_BINARY, _TEXT):
            self._backlog += 1
        super().process_event(event)

    def _binary(self, payload: bytes, frame: Frame | None) -> None:
        """One complete binary message: settled inline, or queued for the handler task."""
        target = self._target
        if target is not None and not self._backlog and self.protocol.state is _OPEN:
            try:
                if self.settle(target, payload):
                    return
            except Exception:
                # A bug, not bad input (settle refuses that by returning False): close this
                # one connection as websockets closes one whose handler failed.
                self.logger.error("inline frame handling failed", exc_info=True)
                self.protocol.fail(CloseCode.INTERNAL_ERROR)
                self.send_data()
                return
        self._backlog += 1
        super().process_event(frame if frame is not None else Frame(_BINARY, payload))


def connection_class(settle: Settle) -> type[InlineConnection]:
    """A connection class for websockets' ``serve(create_connection=...)`` that settles with
    ``settle``."""
    return type("GatewayConnection", (InlineConnection,), {"__slots__": (),
                                                           "settle": staticmethod(settle)})
