"""Prometheus metrics of the router."""

from prometheus_client import Counter, Histogram

RECORDS = Counter("herald_router_records_total", "Records consumed, by result (ok, dead_letter, "
                  "repeated: an idempotency key another task holds).", ["result"])
DECISIONS = Counter("herald_router_decisions_total", "Per-device routing decisions.",
                    ["decision"])
BATCH_SECONDS = Histogram("herald_router_batch_seconds", "Time to route and hand off one batch.",
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
FAILURES = Counter("herald_router_batch_failures_total",
                   "Batches whose hand-off failed and will be retried.")
INBOX = Counter("herald_router_inbox_total", "Offline inbox writes, by result.", ["result"])
FANOUT = Counter("herald_router_fanout_total", "Records of tasks, by kind (request: a fan-out "
                 "to start, step, shard, push: a direct push) and result (done, replayed, "
                 "stopped: the task was stopped or recalled).", ["kind", "result"])
HELD = Counter("herald_router_held_total", "Devices a push was held back from by the app's "
               "delivery policy, by reason (frequency_capped: the device's account had the "
               "app's cap of pushes for the period).", ["reason"])
RECALLS = Counter("herald_router_recalls_total", "Recall requests, by result (started, "
                  "not_started: nothing was routed yet).", ["result"])
TIMERS = Counter("herald_router_timers_total", "Timers, by kind (schedule: a scheduled push, "
                 "pace: a paced fan-out shard or step, quiet: a push held through quiet hours) "
                 "and event (set, fired).", ["kind", "event"])
TIMER_LATENESS = Histogram("herald_router_timer_lateness_seconds", "How long after its due "
                           "time a timer was published.",
                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30))
