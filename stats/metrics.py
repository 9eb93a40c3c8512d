"""Prometheus metrics of the stats consumer."""

from prometheus_client import Counter, Histogram

EVENTS = Counter("herald_stats_events_total", "Events consumed, by result (counted, "
                 "no_app: a task-level event without an app id, dead_letter).", ["result"])
BATCH_SECONDS = Histogram("herald_stats_batch_seconds", "Time to fold one batch of events.",
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
FAILURES = Counter("herald_stats_batch_failures_total",
                   "Batches that failed and will be retried.")
