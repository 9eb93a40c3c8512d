"""JSON logs through structlog, one object per line on standard output.

Herald's own lines go through structlog's native path (level filtering before any work, msgspec
as the JSON encoder, bytes written straight to stdout): the stdlib bridge cost a quarter of a
core at 2,000 pushes/s. Libraries that log through ``logging`` (websockets, aiokafka) are
rendered by the same processors, so every line a role prints is JSON.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import msgspec
import structlog


def configure(level: str, **context: Any) -> structlog.typing.FilteringBoundLogger:
    """Set up JSON logging at ``level`` and return a logger bound to ``context`` (role, node)."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.JSONRenderer(serializer=_json)],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.BytesLoggerFactory(sys.stdout.buffer),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer()],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    structlog.contextvars.bind_contextvars(**context)
    return structlog.get_logger()


def _json(event: dict[str, Any], **_: Any) -> bytes:
    return msgspec.json.encode(event, enc_hook=str)
