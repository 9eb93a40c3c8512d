"""Serving Prometheus metrics. Each role defines its own metrics next to the code they count."""

from __future__ import annotations

from prometheus_client import start_http_server


def serve(host: str, port: int) -> None:
    """Expose the default registry on http://host:port/metrics (a daemon thread); 0 = off."""
    if port:
        start_http_server(port, addr=host)
