"""Prometheus metrics of vendor senders.

``app`` labels appear only where an operator must know which app to act on (its requests, its
refused or missing credentials); per-device counters stay per vendor.
"""

from prometheus_client import Counter, Histogram

SENDS = Counter("herald_vendor_sends_total", "Per-device vendor outcomes.", ["vendor", "result"])
REQUESTS = Counter("herald_vendor_requests_total",
                   "Vendor requests, by app and result (ok, or the error class).",
                   ["vendor", "app", "result"])
LATENCY = Histogram("herald_vendor_request_seconds", "Vendor request latency.", ["vendor"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
RETRIES = Counter("herald_vendor_retries_total", "Vendor requests retried.", ["vendor"])
RATE_LIMIT_WAITS = Counter(
    "herald_vendor_rate_limit_waits_total",
    "Waits a rate limit imposed: the vendor's (429, quota codes) or Herald's own (rps).",
    ["vendor", "source"])
RATE_LIMIT_WAIT_SECONDS = Counter("herald_vendor_rate_limit_wait_seconds_total",
                                  "Seconds spent waiting for rate limits.", ["vendor", "source"])
TOKENS_INVALIDATED = Counter("herald_vendor_tokens_invalidated_total",
                             "Device tokens removed because the vendor called them invalid.",
                             ["vendor"])
DEAD_LETTERS = Counter("herald_vendor_dead_letters_total", "Jobs parked in the dead-letter topic.",
                       ["vendor"])
AUTH_FAILURES = Counter("herald_vendor_auth_failures_total",
                        "Jobs failed because the vendor refused the app's credentials: alert.",
                        ["vendor", "app"])
MISSING_CREDENTIALS = Counter("herald_vendor_missing_credentials_total",
                              "Jobs failed because the app has no credentials for the vendor.",
                              ["vendor", "app"])
RECALLS = Counter("herald_vendor_recalls_total", "Per-device recall outcomes (recalled, "
                  "not_supported, or why the vendor refused).", ["vendor", "result"])
