"""Prometheus metrics of the HTTP API."""

from prometheus_client import Counter, Histogram

REQUESTS = Counter("herald_api_requests_total",
                   "HTTP requests, by route template, method and status.",
                   ["route", "method", "status"])
REQUEST_SECONDS = Histogram("herald_api_request_seconds", "Time to answer one request.",
                            ["route"],
                            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
AUTH_FAILURES = Counter("herald_api_auth_failures_total",
                        "Calls refused for their credentials, by reason.", ["reason"])
PUSHES = Counter("herald_api_pushes_total", "Pushes accepted and published, by audience kind.",
                 ["audience"])
RECALLS = Counter("herald_api_recalls_total",
                  "Recall calls, by outcome (recalled, unknown, recalled_already, too_late).",
                  ["outcome"])
