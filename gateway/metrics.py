"""Prometheus metrics of the gateway."""

from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS = Gauge("herald_gateway_connections", "Devices connected to this node.")
CONNECTS = Counter("herald_gateway_connects_total", "Devices that completed HELLO.")
DISCONNECTS = Counter("herald_gateway_disconnects_total", "Closed device connections.",
                      ["reason"])
REGISTRATIONS = Counter("herald_gateway_registrations_total", "REGISTER frames answered.")
AUTH_FAILURES = Counter("herald_gateway_auth_failures_total", "Refused REGISTER or HELLO.",
                        ["reason"])
PUSHES = Counter("herald_gateway_pushes_total", "Pushes for devices of this node, by outcome.",
                 ["outcome"])
ACKS = Counter("herald_gateway_acks_total", "ACK frames, by whether they matched a push.",
               ["matched"])
# Bound once: ``labels()`` costs a lock and a dict lookup, and these count once per device.
WRITTEN = PUSHES.labels("written")
ACKS_MATCHED = ACKS.labels("true")
ACKS_UNMATCHED = ACKS.labels("false")
ACK_TIMEOUTS = Counter("herald_gateway_ack_timeouts_total", "Pushes not acknowledged in time.")
CLICKS = Counter("herald_gateway_clicks_total", "CLICK frames.")
FALLBACKS = Counter("herald_gateway_fallbacks_total",
                    "Pushes sent back to the offline path, by reason.", ["reason"])
INBOX_DEPTH = Histogram("herald_gateway_inbox_depth",
                        "Offline inbox messages waiting for a device when it connects.",
                        buckets=(0, 1, 2, 5, 10, 20, 50, 100, 200))
BYTES_IN = Counter("herald_gateway_bytes_in_total", "Bytes of frames received from devices.")
BYTES_OUT = Counter("herald_gateway_bytes_out_total", "Bytes of frames written to devices.")
OUTFLOW_ERRORS = Counter("herald_gateway_outflow_errors_total",
                         "Events or fallbacks Kafka refused.")
