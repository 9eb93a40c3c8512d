"""Kafka topic names. ``deploy/local/topics.txt`` creates exactly these."""

#: Push requests from backends and from the HTTP API; the router consumes them.
REQUESTS = "push.requests"
#: Recall requests (``proto.envelopes.RecallRequest``) from backends and the HTTP API.
RECALLS = "push.recalls"
#: Every stage of every delivery (see ``proto.events``).
EVENTS = "push.events"
#: Pushes a gateway could not deliver online (no ACK in time, socket closed, slow reader); the
#: router sends them down the offline path.
FALLBACK = "push.fallback"
#: Fan-out of pushes to resolved audiences (all users, filters, accounts): planning steps
#: keyed by task, and shards of devices that every router instance takes a share of.
FANOUT = "push.fanout"
#: Records no consumer could decode; the value is the original bytes, headers say why.
DEADLETTER = "push.deadletter"
#: One topic per vendor channel, consumed by that vendor's senders.
VENDOR_PREFIX = "push.vendor."

#: Callback posts that kept failing, parked with their reason (headers as on DEADLETTER).
CALLBACKS_PARKED = "push.callbacks.parked"
#: Callback posts whose attempt failed, due again at a not-before time (``callbacks.retries``).
CALLBACKS_RETRY = "push.callbacks.retry"

#: Consumer groups.
ROUTER_GROUP = "herald-router"
#: The routers' group on ``FANOUT``: its own, so that fan-out batches are sized apart from
#: request batches (a shard holds a thousand devices, a request usually one).
FANOUT_GROUP = "herald-router-fanout"
VENDOR_GROUP_PREFIX = "herald-vendor-"
#: The stats consumers' group on ``EVENTS``.
STATS_GROUP = "herald-stats"
#: The callback senders' group on ``EVENTS``.
CALLBACKS_GROUP = "herald-callbacks"
#: The callback senders' group on ``CALLBACKS_RETRY``.
CALLBACKS_RETRY_GROUP = "herald-callbacks-retry"

#: Header names on dead-letter records.
DL_REASON = "herald-reason"
DL_SOURCE = "herald-source"
#: Header naming the app on parked callback posts.
CB_APP = "herald-app-id"


def vendor_topic(vendor: str) -> str:
    """Topic that carries offline deliveries for ``vendor``."""
    return VENDOR_PREFIX + vendor


def vendor_group(vendor: str) -> str:
    """Consumer group of ``vendor``'s senders."""
    return VENDOR_GROUP_PREFIX + vendor
