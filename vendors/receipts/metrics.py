"""Prometheus metrics of ``herald receipts``, by vendor (no app label: refusals are logged
with the app id, and an operator acts on the vendor's configuration)."""

from prometheus_client import Counter, Histogram

RECEIPTS = Counter("herald_receipts_total",
                   "Receipt posts by result: accepted, forged, malformed, unknown_app, "
                   "unavailable (store or Kafka down: answered 503 for the vendor to retry).",
                   ["vendor", "result"])
DEVICES = Counter("herald_receipts_devices_total",
                  "Devices named by accepted posts, by outcome: delivered, clicked, failed, "
                  "ignored (a receipt Herald did not ask for, or a state it does not report), "
                  "unknown (no device holds the token).",
                  ["vendor", "outcome"])
LATENCY = Histogram("herald_receipts_request_seconds", "Time to answer an accepted post.",
                    ["vendor"], buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5))
