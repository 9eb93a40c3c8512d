"""JSON logs through structlog, one object per line on standard output.

Libraries that log through the standard ``logging`` module (websockets, aiokafka) are rendered by
the same processors, so every line a role prints is JSON.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure(level: str, **context: Any) -> structlog.stdlib.BoundLogger:
    """Set up JSON logging at ``level`` and return a logger bound to ``context`` (role, node)."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer()],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    structlog.contextvars.bind_contextvars(**context)
    return structlog.get_logger()
