"""Prometheus metrics of the callback sender.

Only parked posts carry the app: that is where an operator has to tell an app its receiver is
down. Everything else stays per result, whatever the number of apps.
"""

from prometheus_client import Counter, Histogram

POSTS = Counter("herald_callbacks_posts_total", "Callback post attempts, by result: delivered "
                "(a 2xx), retried (failed, handed to push.callbacks.retry), parked (failed "
                "its last attempt).", ["result"])
EVENTS = Counter("herald_callbacks_events_total", "Events consumed, by result: posted, "
                 "parked, not_wanted (no config, or a stage the app did not ask for), "
                 "undecodable.", ["result"])
POST_SECONDS = Histogram("herald_callbacks_post_seconds", "Time of one post attempt.",
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
PARKED = Counter("herald_callbacks_parked_total", "Posts parked on push.callbacks.parked, by "
                 "app and last failure (timeout, connection, status, error).",
                 ["app", "failure"])
CONFIG_LOOKUPS = Counter("herald_callbacks_config_lookups_total", "Callback config reads from "
                         "the store, by result: found, none, invalid.", ["result"])
FAILURES = Counter("herald_callbacks_batch_failures_total",
                   "Batches that failed and will be read again.")
RETRIES = Counter("herald_callbacks_retries_total", "Retries scheduled on push.callbacks.retry, "
                  "by the loop whose attempt failed: first (the main loop), retry (the retry "
                  "loop).", ["loop"])
RETRIES_EARLY = Counter("herald_callbacks_retries_early_total", "Retries read before their "
                        "not-before time, and waited for: the retry loop is ahead of them.")
RETRY_LATENESS = Histogram("herald_callbacks_retry_lateness_seconds", "How long after its "
                           "not-before time a retry was read (0 if early): the retry "
                           "queue's lag.",
                           buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
RETRY_FAILURES = Counter("herald_callbacks_retry_batch_failures_total",
                         "Retry batches that failed and will be read again.")
