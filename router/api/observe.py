"""The outermost layer of every request: metrics by route template and status, and the one
place an unexpected exception becomes a logged 500 without details."""

from __future__ import annotations

import time

import structlog
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from proto.api import ApiCode
from router.api.errors import error_response
from router.api.metrics import REQUEST_SECONDS, REQUESTS

log = structlog.get_logger()

#: The route label of requests that matched no route (unknown paths), so that random paths do
#: not each make a time series.
UNMATCHED = "unmatched"


class Observe:
    """ASGI middleware: count and time each request, answer 500 for an unexpected error.
    ``fixed`` are the paths of routes that do not tell the request their template (FastAPI's
    document and docs pages), labelled by their path."""

    def __init__(self, app: ASGIApp, fixed: frozenset[str] = frozenset()) -> None:
        self._app = app
        self._fixed = fixed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (or pass other ASGI events through)."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, observed)
        except Exception:
            log.exception("request failed", method=scope["method"], path=scope["path"])
            if status:
                # The answer has begun; the server closes the connection.
                raise
            status = 500
            await error_response(500, ApiCode.INTERNAL, "internal error; it was logged")(
                scope, receive, send)
        finally:
            template = self._template(scope)
            REQUESTS.labels(template, scope["method"], str(status or 500)).inc()
            REQUEST_SECONDS.labels(template).observe(time.perf_counter() - started)

    def _template(self, scope: Scope) -> str:
        route = scope.get("route")
        if isinstance(route, Route):
            return route.path
        return scope["path"] if scope["path"] in self._fixed else UNMATCHED
