"""Prometheus metrics of the gateway."""

from prometheus_client import Counter, Gauge

CONNECTIONS = Gauge("herald_gateway_connections", "Devices connected to this node.")
CONNECTS = Counter("herald_gateway_connects_total", "Devices that completed HELLO.")
DISCONNECTS = Counter("herald_gateway_disconnects_total", "Closed device connections.",
                      ["reason"])
PUSHES = Counter("herald_gateway_pushes_total", "Pushes taken from the node inbox, by outcome.",
                 ["outcome"])
ACKS = Counter("herald_gateway_acks_total", "ACK frames, by whether they matched a push.",
               ["matched"])
BYTES_IN = Counter("herald_gateway_bytes_in_total", "Bytes of frames received from devices.")
BYTES_OUT = Counter("herald_gateway_bytes_out_total", "Bytes of frames written to devices.")
EVENT_ERRORS = Counter("herald_gateway_event_errors_total", "Events the bus failed to store.")
