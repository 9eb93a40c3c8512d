"""Prometheus metrics of vendor senders."""

from prometheus_client import Counter, Histogram

SENDS = Counter("herald_vendor_sends_total", "Per-device vendor outcomes.", ["vendor", "result"])
REQUESTS = Counter("herald_vendor_requests_total", "Vendor requests, by result.",
                   ["vendor", "result"])
RETRIES = Counter("herald_vendor_retries_total", "Vendor requests retried.", ["vendor"])
DEAD_LETTERS = Counter("herald_vendor_dead_letters_total", "Jobs parked in the dead-letter topic.",
                       ["vendor"])
LATENCY = Histogram("herald_vendor_request_seconds", "Vendor request latency.", ["vendor"])
